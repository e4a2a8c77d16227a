"""The denoising experiment's parts: model, patches, training, metrics, Jacobian, claims, weights I/O, tiling."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from biaslab.nets.bias_free import BiasFreeBatchNorm2d, make_bias_free
from biaslab.nets.biases import count_biases
from biaslab.experiments.denoise import (
    TEST_IMAGES,
    TRAIN_IMAGES,
    DnCNN,
    add_noise,
    apply_denoiser,
    denoise_tiled,
    equivariance_error,
    evaluate_psnr,
    filter_stats,
    jacobian_rows,
    linearity_residual,
    load_denoiser,
    psnr,
    run_denoise,
    sample_patches,
    save_denoiser,
    train_denoisers,
)
from biaslab.experiments.denoise import checkpoint as checkpoint_module
from biaslab.experiments.denoise.claims import (
    EQUIVARIANCE_TOLERANCE,
    denoise_claims,
    equivariant_claim,
    generalises_claim,
    tie_claim,
    widening_claim,
)
from biaslab.experiments.denoise.tiling import tile_count, tile_starts, tile_window
from biaslab.infra.io import BiaslabError
from biaslab.results import Claim
from biaslab.results.denoise import DenoiseResult, FilterRows


def _random_pair(seed: int = 0, depth: int = 4) -> dict[str, DnCNN]:
    """A with-bias DnCNN with non-zero biases and last layer, its bias-free twin; eval mode."""
    torch.manual_seed(seed)
    wb = DnCNN(depth=depth, width=8)
    last = f"body.{len(wb.body) - 1}.weight"
    with torch.no_grad():
        for name, p in wb.named_parameters():
            if name.endswith("bias") or name == last:
                p.normal_(0.0, 0.2)
            elif p.dim() == 1:  # BatchNorm gains
                p.fill_(1.0)
    models = {"with_bias": wb, "bias_free": make_bias_free(wb)}
    for m in models.values():
        m.train()(torch.rand(4, 1, 12, 12))  # running statistics
        m.eval()
    return models


# --------------------------------------------------------------------------- model and data


def test_dncnn_structure_and_bias_free_twin():
    net = DnCNN(depth=5, width=8)
    convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.body) == 3
    assert net.architecture == {"model": "DnCNN", "depth": 5, "width": 8, "channels": 1, "bias": True}
    free = DnCNN(depth=5, width=8, bias=False)
    assert count_biases(free) == 0 and sum(isinstance(m, BiasFreeBatchNorm2d) for m in free.body) == 3
    converted = make_bias_free(net)
    assert converted.architecture["bias"] is False
    assert converted.state_dict().keys() == free.state_dict().keys()
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():  # residual: f(y) = y − body(y)
        torch.testing.assert_close(net(x), x - net.body(x))


def test_receptive_radius_is_the_depth():
    net = _random_pair(depth=4)["with_bias"]
    y = torch.rand(1, 1, 21, 21)
    row = jacobian_rows(net, y, [(10, 10)])[0]
    r, c = np.nonzero(row)
    assert max(np.abs(r - 10).max(), np.abs(c - 10).max()) == net.receptive_radius == 4


@pytest.mark.parametrize("kwargs", [{"depth": 1}, {"width": 0}, {"width": 100_000}, {"channels": 2}])
def test_dncnn_rejects_bad_sizes(kwargs):
    with pytest.raises(BiaslabError, match="DnCNN needs"):
        DnCNN(**kwargs)


def test_psnr_matches_definition_and_clips():
    clean = np.full((4, 4), 0.5)
    assert psnr(clean, clean + 0.1) == pytest.approx(20.0)  # 10·log10(1 / 0.01)
    assert psnr(clean, clean) == math.inf
    assert psnr(np.ones((2, 2)), np.full((2, 2), 3.0)) == math.inf  # clipped to 1 first
    big = np.random.default_rng(0).random(3_000_000).astype(np.float32)  # more than one block
    est = big + 0.01
    assert psnr(big, est) == pytest.approx(10 * math.log10(1 / np.mean((big - np.clip(est, 0, 1)) ** 2.0)))


def test_sample_patches_shapes_range_and_determinism():
    imgs = [np.linspace(0, 1, 30 * 50, dtype=np.float32).reshape(30, 50), np.zeros((20, 20), np.float32)]
    a = sample_patches(imgs, 16, 8, np.random.default_rng(3))
    b = sample_patches(imgs, 16, 8, np.random.default_rng(3))
    assert a.shape == (16, 1, 8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_train_and_test_images_are_disjoint():
    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)


# --------------------------------------------------------------------------- training


class _Recorder(torch.nn.Module):
    """Wraps a network and keeps a copy of every input it is given."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.seen = net, []

    def forward(self, y):
        self.seen.append(y.detach().clone())
        return self.net(y)


def _train(models, seed=0, steps=3):
    imgs = [np.random.default_rng(0).random((40, 40)).astype(np.float32)]
    return train_denoisers(models, imgs, steps=steps, batch_size=4, patch_size=16, sigma_max=30, seed=seed)


def test_both_networks_train_on_identical_noisy_batches():
    torch.manual_seed(0)
    wb = DnCNN(depth=3, width=4)
    models = {"with_bias": _Recorder(wb), "bias_free": _Recorder(make_bias_free(wb))}
    _train(models, steps=4)
    a, b = models["with_bias"].seen, models["bias_free"].seen
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert not torch.equal(a[0], a[1])  # fresh patches and noise every step
    noise = a[0] - a[0].mean()
    assert float(noise.std()) > 0.01  # the batches are noisy, not just clean patches


def test_training_is_deterministic_and_leaves_eval_mode():
    def pair():
        torch.manual_seed(5)
        wb = DnCNN(depth=4, width=8)
        models = {"with_bias": wb, "bias_free": make_bias_free(wb)}
        _train(models, seed=5)
        return models

    a, b = pair(), pair()
    for k in a:
        for (n1, t1), (_, t2) in zip(a[k].state_dict().items(), b[k].state_dict().items()):
            torch.testing.assert_close(t1, t2, rtol=0, atol=0, msg=f"{k}.{n1}")
    assert not a["with_bias"].training and not a["bias_free"].training


def test_divergence_names_the_step_and_the_learning_rate():
    torch.manual_seed(0)
    net = DnCNN(depth=3, width=4)
    with torch.no_grad():
        net.body[0].weight.fill_(float("nan"))
    with pytest.raises(BiaslabError, match=r"diverged at step 1 .*`lr`"):
        _train({"with_bias": net})


# --------------------------------------------------------------------------- analysis


def test_equivariance_and_linearity_separate_the_two_nets():
    models = _random_pair()
    y = torch.rand(2, 1, 16, 16) + 0.1 * torch.randn(2, 1, 16, 16)
    eq_bf = equivariance_error(models["bias_free"], y, (0.3, 3.0))
    eq_wb = equivariance_error(models["with_bias"], y, (0.3, 3.0))
    assert max(eq_bf) < 1e-5 < 1e-2 < min(eq_wb)
    assert linearity_residual(models["bias_free"], y) < 1e-5
    assert linearity_residual(models["with_bias"], y) > 1e-2


def test_jacobian_rows_match_autograd_and_reconstruct_the_output():
    net = _random_pair()["bias_free"].double()
    y = torch.rand(1, 1, 9, 9, dtype=torch.float64)
    pixels = [(3, 4), (6, 6)]
    rows = jacobian_rows(net, y, pixels)
    for (r, c), row in zip(pixels, rows):
        leaf = y.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(leaf)[0, 0, r, c], leaf)
        np.testing.assert_allclose(row, grad[0, 0].numpy(), atol=1e-12)
        with torch.no_grad():  # bias-free: the denoised pixel is exactly the row's weighted sum of the input
            expected = float(net(y)[0, 0, r, c])
        assert float((row * y[0, 0].numpy()).sum()) == pytest.approx(expected, abs=1e-12)


def test_filter_stats_definitions():
    delta = np.zeros((9, 9))
    delta[4, 4] = 0.7
    assert filter_stats(delta, (4, 4)) == {"centre": 0.7, "row_sum": pytest.approx(0.7), "effective_width": 1.0,
                                           "radius90": 0.0}
    box = np.zeros((9, 9))
    box[3:6, 3:6] = 1 / 9
    s = filter_stats(box, (4, 4))
    assert s["row_sum"] == pytest.approx(1.0) and s["effective_width"] == pytest.approx(3.0)
    assert s["radius90"] == pytest.approx(math.sqrt(2))  # the centre and 4 neighbours hold only 5/9
    signed = np.zeros((9, 9))
    signed[4, 4], signed[4, 5] = 1.0, -1.0
    s = filter_stats(signed, (4, 4))
    assert s["row_sum"] == 0 and s["effective_width"] == pytest.approx(math.sqrt(2)) and s["radius90"] == 1.0


def test_evaluate_psnr_has_one_value_per_sigma_and_noisy_gets_worse():
    models = _random_pair()
    clean = torch.rand(2, 1, 16, 16)
    out = evaluate_psnr(models, clean, [5, 50])
    assert set(out) == {"noisy", "with_bias", "bias_free"} and all(len(v) == 2 for v in out.values())
    assert out["noisy"][0] > out["noisy"][1]
    assert evaluate_psnr(models, clean, [5, 50]) == out  # fixed noise for a seed


@settings(max_examples=15, deadline=None)
@given(alpha=st.floats(0.01, 100.0), seed=st.integers(0, 1000))
def test_bias_free_dncnn_is_homogeneous_in_float64(alpha, seed):
    torch.manual_seed(seed)
    net = DnCNN(depth=4, width=6, bias=False).double()
    net.train()
    net(torch.rand(4, 1, 12, 12, dtype=torch.float64))
    net.eval()
    y = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(alpha * y), alpha * net(y), rtol=1e-12, atol=1e-13 * alpha)


# --------------------------------------------------------------------------- claims

SIGMAS = [5.0, 10.0, 20.0, 50.0, 100.0]


def test_generalisation_is_judged_at_the_largest_sigma_not_at_twice_the_training_max():
    # far ahead at 2× the training maximum (σ = 20), barely at σ = 100 (10×): the claim is about σ = 100
    c = generalises_claim(SIGMAS, [0.0, 0.0, 6.0, 3.0, 0.5], train_sigma_max=10)
    assert c.holds is False and c.evidence["sigma"] == 100 and c.evidence["gain_db"] == 0.5
    assert "not ahead by 1 dB here (+0.50 dB at σ = 100, 10× the training maximum)" in c.text
    assert generalises_claim(SIGMAS, [0, 0, 0, 0, 1.0], 10).holds is True


def test_generalisation_needs_five_times_the_training_max():
    # σ = 30 is 3× the training maximum: a gain there is not "far outside" — not measured
    c = generalises_claim([5.0, 10.0, 20.0, 30.0], [0.0, 0.0, 8.0, 9.0], train_sigma_max=10)
    assert c.holds is None and "less than 5× the training maximum" in c.text and "+9.00 dB" in c.text
    assert generalises_claim([10.0, 50.0], [0.0, 9.0], train_sigma_max=10).holds is True  # exactly 5×


def test_a_small_loss_says_not_better_never_generalises():
    c = generalises_claim(SIGMAS, [0, 0, 0, 0, -0.04], 10)
    assert c.holds is False
    assert c.text == "Bias-free is not better here (−0.04 dB at σ = 100, 10× the training maximum)."


def test_tie_claim_checks_every_sigma_inside_the_training_range():
    assert tie_claim(SIGMAS, [0.2, -0.9, 5.0, 9.0, 9.0], 10).holds is True  # outside the range does not count
    c = tie_claim(SIGMAS, [0.2, -1.2, 0.0, 0.0, 0.0], 10)
    assert c.holds is False and c.evidence["at_sigma"] == 10 and c.evidence["max_abs_gap_db"] == pytest.approx(1.2)
    assert "−1.20 dB" in c.text
    assert tie_claim([50.0, 100.0], [0.0, 0.0], 10).holds is None


def test_equivariance_claim_has_the_tolerance_and_the_with_bias_value():
    c = equivariant_claim({"bias_free": 3e-8, "with_bias": 0.04})
    assert c.holds is True and c.evidence == {"max_relative_error": 3e-8, "with_bias_max_relative_error": 0.04,
                                              "tolerance": EQUIVARIANCE_TOLERANCE}
    assert "3e−8" in c.text and "0.04" in c.text  # the minus sign, as in the figures
    assert equivariant_claim({"bias_free": 2 * EQUIVARIANCE_TOLERANCE, "with_bias": 0.04}).holds is False


def _filters(widths_lo, widths_hi):
    def one(s, w):
        return FilterRows(s, np.zeros((4, 4), np.float32), [(1, 1)] * len(w), ["a"] * len(w),
                          np.zeros((len(w), 4, 4), np.float32), [0.5] * len(w), [1.0] * len(w), list(w), [1.0] * len(w))
    return [one(10.0, widths_lo), one(100.0, widths_hi)]


def test_widening_claim_is_measured_not_assumed():
    assert widening_claim(_filters([1.0, 1.2], [2.0, 2.4])).holds is True
    c = widening_claim(_filters([2.0, 2.0], [2.0, 2.1]))
    assert c.holds is False and c.evidence["ratio"] == pytest.approx(1.025)


def _result(gain_at_100: float) -> DenoiseResult:
    noisy = [34.0, 28.0, 22.0, 15.0, 10.0]
    wb = [36.0, 33.0, 25.0, 15.0, 10.4]
    bf = wb[:-1] + [wb[-1] + gain_at_100]
    gain = [b - w for b, w in zip(bf, wb)]
    eq = {"with_bias": 0.04, "bias_free": 0.0}
    return DenoiseResult(
        sigmas=SIGMAS, psnr={"noisy": noisy, "with_bias": wb, "bias_free": bf}, gain_db=gain, train_sigma_max=10.0,
        equivariance={"alphas": [2.0], "with_bias": [0.04], "bias_free": [0.0]}, equivariance_error=eq,
        linearity_residual={"with_bias": 0.1, "bias_free": 0.0}, train_images=["a"], test_images=["b"],
        final_train_loss={"with_bias": 1e-3, "bias_free": 1e-3}, train_seconds=1.0,
        params={"depth": 3, "width": 8, "steps": 1, "batch_size": 2, "patch_size": 8, "eval_crop": 16,
                "device": "cpu"},
        claims=denoise_claims(SIGMAS, gain, 10.0, eq, []),
    )


def test_headings_and_figure_titles_follow_the_claim(tmp_path, monkeypatch):
    from biaslab.render import denoise as render

    titles = []
    real_save = render.save_figure

    def spy(fig, out_dir, name, fmt="png"):
        titles.extend(ax.get_title() for ax in fig.axes)
        titles.append(fig._suptitle.get_text() if fig._suptitle else "")
        return real_save(fig, out_dir, name, fmt)

    monkeypatch.setattr(render, "save_figure", spy)
    res = _result(-0.04)
    figs = render.figures(res, tmp_path, "png")
    text = " ".join(titles) + " ".join(s.title for s in render.sections(res, figs)) + render.summary(res)
    assert "not better here (−0.04 dB at σ = 100" in text
    assert "generalises" not in text.lower().replace("bias-free is not better", "")
    titles.clear()
    good = _result(8.0)
    render.figures(good, tmp_path, "png")
    assert any("Bias-free generalises beyond the training noise: +8.00 dB" in t for t in titles)


def test_result_round_trips_through_json(tmp_path):
    res = _result(2.0)
    res.filters = _filters([1.0], [2.0])
    back = DenoiseResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.claims == res.claims and back.psnr == res.psnr
    np.testing.assert_array_equal(back.filters[1].rows, res.filters[1].rows)
    assert back.filters[0].pixels == [(1, 1)]
    assert isinstance(back.claims[0], Claim)


# --------------------------------------------------------------------------- weights


def test_save_and_load_round_trip(tmp_path):
    for k, m in _random_pair().items():
        path = save_denoiser(m, tmp_path / f"{k}.pt")
        back = load_denoiser(path)
        assert back.architecture == m.architecture
        x = torch.rand(1, 1, 10, 10)
        with torch.no_grad():
            torch.testing.assert_close(back(x), m(x))
        (tmp_path / f"{k}.json").unlink()  # without the JSON the architecture is read off the weights
        assert load_denoiser(path).architecture == m.architecture


def test_load_refuses_wrong_architecture_and_non_state_dicts(tmp_path):
    path = save_denoiser(DnCNN(depth=4, width=8), tmp_path / "net.pt")
    (tmp_path / "net.json").write_text('{"model": "DnCNN", "depth": 5, "width": 8, "channels": 1, "bias": true}')
    with pytest.raises(BiaslabError, match="does not match a DnCNN with depth=5, width=8.*weights are depth=4"):
        load_denoiser(path)
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(BiaslabError, match="not a biaslab DnCNN"):
        load_denoiser(other)
    listy = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listy)
    with pytest.raises(BiaslabError, match="not a state_dict"):
        load_denoiser(listy)


@pytest.mark.parametrize("sidecar, message", [
    ('{"model": "DnCNN", "depth": 4, "width": 500, "channels": 1, "bias": true}', "does not match"),
    ('{"model": "DnCNN", "depth": 4, "width": 8000, "channels": 1, "bias": true}', "width must be between 1 and 512"),
    ('{"depth": Infinity, "width": 8, "channels": 1, "bias": true}', "Infinity"),
    ('{"depth": 4.0, "width": 8, "channels": 1, "bias": true}', "depth must be a whole number"),
    ('{"depth": 4, "width": 8, "channels": 1, "bias": "yes"}', "bias must be true or false"),
    ('[4, 8]', "JSON object"),
    ('{"1": 2}', "depth must be a whole number"),
    ('not json', "cannot read the architecture file"),
    (" " * 5000, "not a denoiser architecture file"),
])
def test_sidecar_is_checked_before_any_network_is_built(tmp_path, monkeypatch, sidecar, message):
    path = save_denoiser(DnCNN(depth=4, width=8), tmp_path / "net.pt")
    (tmp_path / "net.json").write_text(sidecar)

    def no_build(*args, **kwargs):
        raise AssertionError(f"a DnCNN{args} was built before the sidecar was checked")

    monkeypatch.setattr(checkpoint_module, "DnCNN", no_build)
    with pytest.raises(BiaslabError, match=message):
        load_denoiser(path)


def test_load_refuses_nan_weights(tmp_path):
    net = DnCNN(depth=3, width=4, bias=False)
    with torch.no_grad():
        net.body[2].weight[0, 0, 0, 0] = float("nan")
    path = save_denoiser(net, tmp_path / "nan.pt")
    with pytest.raises(BiaslabError, match=r"NaN or infinite weights in body\.2\.weight"):
        load_denoiser(path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_load_refuses_untrusted_pickle_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"body.0.weight": _Payload(marker)}))
    with pytest.raises(BiaslabError, match="refusing to load"):
        load_denoiser(evil)
    assert not marker.exists()


# --------------------------------------------------------------------------- tiling and apply


@pytest.mark.parametrize("length, tile, overlap", [(10, 16, 10), (100, 16, 10), (37, 20, 11), (64, 32, 31)])
def test_tiles_cover_the_axis_and_the_windows_never_vanish(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and min(starts[-1] + tile, length) == length
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    radius, blend = 3, overlap - 6
    total = np.zeros(length)
    for s in starts:
        size = min(tile, length)
        w = tile_window(s, size, length, radius, blend)
        if s > 0:
            assert np.all(w[:radius] == 0)  # pixels whose output the cut changes get no weight
        if s + size < length:
            assert np.all(w[size - radius:] == 0)
        total[s:s + size] += w
    assert total.min() > 0


@pytest.mark.parametrize("shape, tile", [((1, 45, 61), 24), ((3, 30, 70), 17), ((1, 20, 20), 512)])
def test_tiled_denoising_equals_the_untiled_output(shape, tile):
    net = _random_pair(depth=3)["with_bias"]
    img = np.random.default_rng(1).random(shape).astype(np.float32)
    full = np.concatenate([net(torch.from_numpy(img[c:c + 1][None]))[0].detach().numpy() for c in range(shape[0])])
    tiled = np.concatenate([denoise_tiled(net, img[c:c + 1], net.receptive_radius, tile, blend=4)
                            for c in range(shape[0])])
    np.testing.assert_allclose(tiled, full, rtol=0, atol=2e-6)


def test_tiled_denoising_never_feeds_more_than_a_tile():
    net = _Recorder(_random_pair(depth=3)["bias_free"])
    denoise_tiled(net, np.random.default_rng(0).random((1, 100, 90)).astype(np.float32), 3, tile=32, blend=4)
    assert len(net.seen) == tile_count(100, 90, 32, 3, 4) == 5 * 4  # 10-pixel overlaps, 22-pixel steps
    assert max(max(x.shape[-2:]) for x in net.seen) == 32


def _png(path, array):
    from PIL import Image

    Image.fromarray((array * 255).astype(np.uint8)).save(path)
    return path


def test_apply_keeps_colour_per_channel_and_compares_the_twins(tmp_path):
    pair = _random_pair(depth=3)
    for k, m in pair.items():
        save_denoiser(m, tmp_path / f"denoiser_{k}.pt")
    rgb = np.random.default_rng(0).random((30, 41, 3))
    img = _png(tmp_path / "rgb.png", rgb)
    res = apply_denoiser(tmp_path / "denoiser_bias_free.pt", img, sigma=30, seed=2, compare=True, tile=24)
    assert res.colour == "per-channel" and res.shape == [30, 41, 3] and res.tiles > 1
    assert [o.architecture["bias"] for o in res.outputs] == [False, True]
    den = res.outputs[0].image
    assert den.shape == (30, 41, 3)
    # channel by channel: each output channel is the network applied to that noisy channel alone
    from PIL import Image

    with Image.open(img) as im:
        clean = np.moveaxis(np.asarray(im, np.float32) / 255, -1, 0)
    noisy = add_noise(torch.from_numpy(np.ascontiguousarray(clean)), 30, 2)
    with torch.no_grad():
        expected = pair["bias_free"](noisy[1][None, None])[0, 0].numpy()
    np.testing.assert_allclose(den[..., 1], expected, atol=2e-6)
    gain = res.outputs[0].psnr - res.outputs[1].psnr
    claim = res.claim("bias_free_ahead_on_image")
    assert claim.evidence["gain_db"] == pytest.approx(gain)


def test_apply_denoiser_on_a_grey_image(tmp_path):
    path = save_denoiser(_random_pair()["bias_free"], tmp_path / "bf.pt")
    img = _png(tmp_path / "img.png", np.random.default_rng(0).random((20, 24)))
    res = apply_denoiser(path, img, sigma=30, seed=1)
    assert res.colour == "grey" and res.shape == [20, 24] and res.tiles == 1 and res.claims == []
    assert res.outputs[0].image.shape == (20, 24) and res.psnr_noisy is not None
    again = apply_denoiser(path, img, sigma=0)
    assert again.psnr_noisy is None and again.outputs[0].psnr is None
    np.testing.assert_array_equal(again.preview_noisy, again.preview_clean)
    for kwargs, message in [({"sigma": -1}, "`sigma`"), ({"sigma": 1e30}, "`sigma`"), ({"tile": 5}, "`tile` 5"),
                            ({"compare": True}, "`compare` needs")]:
        with pytest.raises(BiaslabError, match=message):
            apply_denoiser(path, img, **{"sigma": 10, **kwargs})


# --------------------------------------------------------------------------- the experiment's input checks


@pytest.mark.parametrize(
    "kwargs, message",
    [({"sigma_max": -5}, "`sigma_max`"), ({"sigma_max": 1e30}, "`sigma_max`"), ({"sigma_max": 0}, "`sigma_max`"),
     ({"lr": float("inf")}, "`lr`"), ({"depth": 1}, "`depth`"), ({"width": 10**6}, "`width`"),
     ({"steps": 0}, "`steps`"), ({"steps": 2.5}, "`steps`"), ({"sigmas": [-1]}, "noise levels")],
)
def test_run_denoise_rejects_bad_settings(kwargs, message):
    with pytest.raises(BiaslabError, match=message):
        run_denoise(quick=True, **kwargs)


def test_run_denoise_on_user_images_needs_two(tmp_path):
    _png(tmp_path / "a.png", np.zeros((40, 40)))
    with pytest.raises(BiaslabError, match="at least 2"):
        run_denoise(quick=True, images=tmp_path)


# --------------------------------------------------------------------------- the README's headline (slow)


#: README: "`--quick` ... +7.0 dB at σ = 100" (measured: +6.96 dB with seed 0 on one thread; training on
#: several threads sums in another order, so allow for that drift).
README_QUICK_GAIN_DB = 7.0


@pytest.mark.slow
def test_quick_run_reproduces_the_readme_headline(tmp_path):
    res = run_denoise(quick=True, seed=0, save_dir=tmp_path)
    gen = res.claim("bias_free_generalises")
    assert gen.holds is True and gen.evidence["sigma"] == 100
    assert gen.evidence["gain_db"] == pytest.approx(README_QUICK_GAIN_DB, abs=0.5)
    assert res.claim("tie_in_training_range").holds is True
    assert res.claim("bias_free_equivariant").holds is True
