"""The conclusions of the denoising experiment, each computed from the numbers with an explicit threshold."""

from __future__ import annotations

from collections.abc import Sequence

from ...infra.numfmt import fmt_fixed, fmt_num, fmt_signed
from ...results import Claim
from ...results.denoise import DenoisedImage, FilterRows

__all__ = [
    "GAIN_THRESHOLD_DB",
    "FAR_FACTOR",
    "TIE_THRESHOLD_DB",
    "EQUIVARIANCE_TOLERANCE",
    "WIDENING_RATIO",
    "denoise_claims",
    "generalises_claim",
    "tie_claim",
    "equivariant_claim",
    "widening_claim",
    "apply_claims",
]

#: The bias-free network must be ahead by at least this many dB at the largest σ tested ...
GAIN_THRESHOLD_DB = 1.0
#: ... and that σ must be at least this many times the training maximum (else: not measured).
FAR_FACTOR = 5.0
#: Inside the training range the two count as tied when they differ by at most this (dB) at every σ.
TIE_THRESHOLD_DB = 1.0
#: Largest relative error ‖f(α·y) − α·f(y)‖/‖α·f(y)‖ (α > 0) that counts as positively homogeneous. float32
#: rounding through a few dozen layers stays below 1e-5; a network with biases is off by 1e-3 or more.
EQUIVARIANCE_TOLERANCE = 1e-4
#: The filter "widens with the noise" when the mean effective width at the largest σ is at least
#: this many times the one at the smallest σ.
WIDENING_RATIO = 1.1

#: The proposition each claim tests (a template over its evidence).
STATEMENTS = {
    "bias_free_generalises": ("Bias-free is ahead by at least {threshold_db:g} dB at the largest σ, at least {far_factor:g}× the "
                              "training maximum"),
    "tie_in_training_range": "The two networks tie (within {threshold_db:g} dB) at every σ inside the training range",
    "bias_free_equivariant": ("The bias-free network is positively homogeneous: f(α·y) = α·f(y) for every tested α > 0 "
                              "(relative error < {tolerance:g}; negative α is not tested, and a ReLU network need "
                              "not satisfy it)"),
    "filter_widens_with_noise": "The bias-free filter widens at least {threshold_ratio:g}× as the noise grows",
    "bias_free_ahead_on_image": "Bias-free is ahead by at least {threshold_db:g} dB on this image",
}


def _db(x: float) -> str:
    return fmt_signed(x, 2, " dB")


def generalises_claim(sigmas: Sequence[float], gain_db: Sequence[float], train_sigma_max: float) -> Claim:
    """``bias_free_generalises``: bias-free ahead by ≥ :data:`GAIN_THRESHOLD_DB` at the largest σ.

    That σ must be at least :data:`FAR_FACTOR` × ``train_sigma_max``; otherwise the claim is not
    measured (``holds`` None).
    """
    i = max(range(len(sigmas)), key=lambda k: sigmas[k])
    sigma, gain = float(sigmas[i]), float(gain_db[i])
    ev = {"sigma": sigma, "gain_db": gain, "train_sigma_max": float(train_sigma_max),
          "far_factor": FAR_FACTOR, "threshold_db": GAIN_THRESHOLD_DB}
    where = f"at σ = {fmt_num(sigma)}, {fmt_num(sigma / train_sigma_max, 3)}× the training maximum"
    if sigma < FAR_FACTOR * train_sigma_max:
        return Claim.decide(
            "bias_free_generalises", None, ev, statement=STATEMENTS["bias_free_generalises"],
        true="", false="",
            unknown=f"Generalisation not measured: the largest σ tested ({fmt_num(sigma)}) is less than "
                    f"{fmt_num(FAR_FACTOR)}× the training maximum ({fmt_num(train_sigma_max)}); there the "
                    f"bias-free network is {_db(gain)} ahead.")
    worse = "not better" if gain < 0.005 else f"not ahead by {fmt_num(GAIN_THRESHOLD_DB)} dB"  # 0.00 dB shown
    return Claim.decide(
        "bias_free_generalises", gain >= GAIN_THRESHOLD_DB, ev,
        statement=STATEMENTS["bias_free_generalises"],
        true=f"Bias-free generalises beyond the training noise: {_db(gain)} ahead {where}.",
        false=f"Bias-free is {worse} here ({_db(gain)} {where}).",
    )


def tie_claim(sigmas: Sequence[float], gain_db: Sequence[float], train_sigma_max: float) -> Claim:
    """``tie_in_training_range``: |bias-free − with-bias| ≤ :data:`TIE_THRESHOLD_DB` at every σ inside the
    training range (σ ≤ ``train_sigma_max``); not measured when no test σ lies there."""
    inside = [(float(s), float(g)) for s, g in zip(sigmas, gain_db) if s <= train_sigma_max]
    ev = {"train_sigma_max": float(train_sigma_max), "threshold_db": TIE_THRESHOLD_DB,
          "sigmas_inside": [s for s, _ in inside]}
    if not inside:
        return Claim.decide("tie_in_training_range", None, ev, statement=STATEMENTS["tie_in_training_range"],
        true="", false="",
                            unknown=f"Not measured: no test σ lies inside the training range "
                                    f"[0, {fmt_num(train_sigma_max)}].")
    sigma, gap = max(inside, key=lambda sg: abs(sg[1]))
    ev.update(max_abs_gap_db=abs(gap), at_sigma=sigma)
    n = len(inside)
    return Claim.decide(
        "tie_in_training_range", abs(gap) <= TIE_THRESHOLD_DB, ev,
        statement=STATEMENTS["tie_in_training_range"],
        true=f"Inside the training range the two tie: they differ by at most {fmt_num(abs(gap), 2)} dB "
             f"(≤ {fmt_num(TIE_THRESHOLD_DB)} dB) at the {n} σ ≤ {fmt_num(train_sigma_max)} tested.",
        false=f"Inside the training range the two do not tie: at σ = {fmt_num(sigma)} the bias-free network "
              f"is {_db(gap)} ahead (more than {fmt_num(TIE_THRESHOLD_DB)} dB apart).",
    )


def equivariant_claim(equivariance_error: dict[str, float]) -> Claim:
    """``bias_free_equivariant``: the bias-free network's largest relative error is below the tolerance."""
    bf, wb = float(equivariance_error["bias_free"]), float(equivariance_error["with_bias"])
    ev = {"max_relative_error": bf, "with_bias_max_relative_error": wb, "tolerance": EQUIVARIANCE_TOLERANCE}
    return Claim.decide(
        "bias_free_equivariant", bf < EQUIVARIANCE_TOLERANCE, ev,
        statement=STATEMENTS["bias_free_equivariant"],
        true=f"The bias-free network is positively homogeneous, f(α·y) = α·f(y) for the tested α > 0: largest relative error "
             f"{fmt_num(bf, 2)} < {fmt_num(EQUIVARIANCE_TOLERANCE)} (with bias: {fmt_num(wb, 2)}).",
        false=f"The bias-free network is not positively homogeneous here (tested α > 0): largest relative error {fmt_num(bf, 2)} "
              f"≥ {fmt_num(EQUIVARIANCE_TOLERANCE)} (with bias: {fmt_num(wb, 2)}).",
    )


def widening_claim(filters: Sequence[FilterRows]) -> Claim:
    """``filter_widens_with_noise``: the mean effective width at the largest σ is at least
    :data:`WIDENING_RATIO` × the one at the smallest σ."""
    lo, hi = min(filters, key=lambda f: f.sigma), max(filters, key=lambda f: f.sigma)
    w_lo = sum(lo.effective_width) / len(lo.effective_width)
    w_hi = sum(hi.effective_width) / len(hi.effective_width)
    ratio = w_hi / w_lo if w_lo > 0 else float("nan")
    ev = {"sigma_low": lo.sigma, "sigma_high": hi.sigma, "width_low_px": w_lo, "width_high_px": w_hi,
          "ratio": ratio, "threshold_ratio": WIDENING_RATIO}
    if lo.sigma == hi.sigma:
        return Claim.decide("filter_widens_with_noise", None, ev, statement=STATEMENTS["filter_widens_with_noise"],
        true="", false="",
                            unknown="Not measured: the filter was examined at one noise level only.")
    nums = (f"mean effective width over {len(hi.effective_width)} pixels {fmt_num(w_lo, 3)} px at "
            f"σ = {fmt_num(lo.sigma)}, {fmt_num(w_hi, 3)} px at σ = {fmt_num(hi.sigma)}")
    return Claim.decide(
        "filter_widens_with_noise", ratio >= WIDENING_RATIO, ev,
        statement=STATEMENTS["filter_widens_with_noise"],
        true=f"The bias-free filter widens as the noise grows: {nums}.",
        false=f"The bias-free filter does not widen by {fmt_num(WIDENING_RATIO)}× as the noise grows: {nums}.",
    )


def denoise_claims(sigmas: Sequence[float], gain_db: Sequence[float], train_sigma_max: float,
                   equivariance_error: dict[str, float], filters: Sequence[FilterRows]) -> list[Claim]:
    """Every claim of a denoising run, in report order."""
    claims = [generalises_claim(sigmas, gain_db, train_sigma_max), tie_claim(sigmas, gain_db, train_sigma_max),
              equivariant_claim(equivariance_error)]
    if filters:
        claims.append(widening_claim(filters))
    return claims


def apply_claims(sigma: float, psnr_noisy: float | None, outputs: Sequence[DenoisedImage]) -> list[Claim]:
    """With both networks on a noisy image: ``bias_free_ahead_on_image`` (≥ :data:`GAIN_THRESHOLD_DB`)."""
    by_kind = {("with_bias" if o.architecture["bias"] else "bias_free"): o for o in outputs}
    if set(by_kind) != {"with_bias", "bias_free"}:
        return []
    ev = {"sigma": float(sigma), "threshold_db": GAIN_THRESHOLD_DB}
    if psnr_noisy is None:
        return [Claim.decide("bias_free_ahead_on_image", None, ev, statement=STATEMENTS["bias_free_ahead_on_image"],
        true="", false="",
                             unknown="Not measured: no noise was added, so there is no clean reference.")]
    gain = by_kind["bias_free"].psnr - by_kind["with_bias"].psnr
    ev.update(gain_db=gain, psnr_with_bias=by_kind["with_bias"].psnr, psnr_bias_free=by_kind["bias_free"].psnr)
    nums = (f"{fmt_fixed(by_kind['bias_free'].psnr, 2)} dB bias-free vs {fmt_fixed(by_kind['with_bias'].psnr, 2)} "
            f"dB with bias at σ = {fmt_num(sigma)}")
    return [Claim.decide(
        "bias_free_ahead_on_image", gain >= GAIN_THRESHOLD_DB, ev,
        statement=STATEMENTS["bias_free_ahead_on_image"],
        true=f"On this image the bias-free network is ahead by {fmt_fixed(gain, 2)} dB: {nums}.",
        false=f"On this image the bias-free network is not ahead by {fmt_num(GAIN_THRESHOLD_DB)} dB "
              f"({_db(gain)}): {nums}.",
    )]
