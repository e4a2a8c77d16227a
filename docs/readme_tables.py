"""The README's number tables, generated from the code: one source of truth.

Each table sits in README.md between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; this
script runs the experiments behind it (on one thread, so the sums round the same way on every
machine) and writes the table, with a line saying how it was measured.

    python docs/readme_tables.py                    # run every table, rewrite README.md
    python docs/readme_tables.py regression ablate  # only these
    python docs/readme_tables.py --check [NAME...]  # exit 1 (with a diff) if README.md differs

Tables: regression (instant), ablate (≈ 2 min on one core), demo (≈ 2 min), denoise (≈ 6 min),
census (≈ 12 min on 2 cores). The test suite checks ``regression`` in the default run and ablate,
demo and denoise in ``-m slow``; the census's time limits make it depend on the machine's load.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
THREADS = 1


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def regression_table() -> str:
    from biaslab.experiments.regression.run import run_regression
    from biaslab.infra.numfmt import fmt_fixed

    res = run_regression()
    rows = ["| fit | slope | intercept | train MSE | residuals against x |", "|---|---|---|---|---|"]
    for key, name in (("without_bias", "without bias (through the origin)"), ("with_bias", "with bias")):
        fit, trend = getattr(res, key), res.residual_trends[key]
        intercept = fmt_fixed(fit.intercept, 3) if key == "with_bias" else "0 (none)"
        rows.append(f"| {name} | {fmt_fixed(fit.coef[0], 3)} | {intercept} | {fmt_fixed(fit.mse, 4)} | "
                    f"r = {fmt_fixed(trend.r, 2)} |")
    return "\n".join(rows) + "\n\n`biaslab regression` (NumPy seed 42, 50 points on [0, 10], σ = 2)."


#: The README's ablation rows: (label, model, data set, variants, the variant compared, shift kind or None).
ABLATE_ROWS = [
    ("`cnn` / digits", "cnn", "digits", ("with-bias", "no-bias"), "no-bias", None),
    ("`cnn` / digits, contrast × 0.1 at test time", "cnn", "digits", ("with-bias", "no-bias"), "no-bias", "contrast"),
    ("`cnn-bn` / digits (`no-bias`)", "cnn-bn", "digits", ("with-bias", "no-bias", "conv-no-bias"), "no-bias", None),
    ("`cnn-bn` / digits (`conv-no-bias`: only the conv biases before BatchNorm)", "cnn-bn", "digits",
     ("with-bias", "no-bias", "conv-no-bias"), "conv-no-bias", None),
    ("`linear` / iris", "linear", "iris", ("with-bias", "no-bias"), "no-bias", None),
    ("`mlp` / iris", "mlp", "iris", ("with-bias", "no-bias"), "no-bias", None),
]


def _comparison_cell(c) -> str:
    from biaslab.infra.numfmt import fmt_p, fmt_signed

    diff = fmt_signed(100 * c.diff_mean, 2, " pp")
    same = " on every seed" if c.constant else ""
    return f"{c.verdict} ({diff}{same}; exact {fmt_p(c.p_value)}, adjusted {fmt_p(c.p_adjusted)}; t-test {fmt_p(c.t_p)})"


def ablate_table() -> str:
    from biaslab.experiments.ablate import run_ablate
    from biaslab.infra.numfmt import fmt_fixed

    runs: dict[tuple, object] = {}
    rows = ["| model / data | with bias | without | verdict (5 seeds) |", "|---|---|---|---|"]
    for label, model, data, variants, compared, shift in ABLATE_ROWS:
        key = (model, data, variants)
        if key not in runs:
            runs[key] = run_ablate(models=[model], datasets=[data], variants=list(variants), out_dir=None)
        (cfg,) = runs[key].configurations
        if shift is None:
            c = next(c for c in cfg.comparisons if c.b == compared)
            a, b = cfg.variants["with-bias"].summary.mean, cfg.variants[compared].summary.mean
        else:
            s = next(s for s in cfg.shift_comparisons if s.kind == shift and s.comparison.b == compared)
            c = s.comparison
            a, b = (float(cfg.variants[v].shift[shift][:, s.index].mean()) for v in ("with-bias", compared))
        rows.append(f"| {label} | {fmt_fixed(a, 4)} | {fmt_fixed(b, 4)} | {_md(_comparison_cell(c))} |")
    return "\n".join(rows) + ("\n\n`biaslab ablate --model M --dataset D` with default settings (5 seeds; "
                              "for cnn-bn `--variants with-bias,no-bias,conv-no-bias`).")


def demo_table() -> str:
    from biaslab.experiments.demo import run_demo
    from biaslab.render.demo import claims_markdown

    res = run_demo(seed=42)
    return claims_markdown(res.claims) + "\n\n`biaslab demo` (seed 42)."


#: Mohan et al. (ICLR 2020), table 1: DnCNN with bias and bias-free, trained on σ ∈ [0, 10].
PAPER = {10: (33.69, 33.84), 20: (24.04, 30.14), 50: (15.29, 25.80), 100: (10.45, 22.83)}


def denoise_table() -> str:
    from biaslab.experiments.denoise import run_denoise
    from biaslab.infra.numfmt import fmt_fixed

    res = run_denoise()
    rows = ["| σ | noisy | with bias | bias-free | paper: with bias | paper: bias-free |", "|---|---|---|---|---|---|"]
    for i, s in enumerate(res.sigmas):
        paper = PAPER.get(int(s))
        if paper is None:  # the paper's noise levels only; results.json holds every σ
            continue
        rows.append(f"| {s:g} | {fmt_fixed(res.psnr['noisy'][i], 2)} | {fmt_fixed(res.psnr['with_bias'][i], 2)} | "
                    f"{fmt_fixed(res.psnr['bias_free'][i], 2)} | {fmt_fixed(paper[0], 2)} | {fmt_fixed(paper[1], 2)} |")
    claims = ["| claim | verdict | what was measured |", "|---|---|---|"]
    for c in res.claims:
        claims.append(f"| `{c.id}` | {c.verdict} | {_md(c.text)} |")
    return ("\n".join(rows) + "\n\n" + "\n".join(claims) +
            "\n\n`biaslab denoise` (default run: depth 8, width 32, 1200 steps, seed 0); PSNR in dB.")


def census_table(result=None) -> str:
    """The census's claims (every model type transformers builds offline). ``result``: a finished run
    (``load_results(DIR)``) instead of a new one."""
    import transformers

    from biaslab.infra.numfmt import fmt_fixed

    if result is None:
        from biaslab.experiments.census import run_census

        result = run_census(jobs=2, threads=THREADS)
    rows = ["| claim | verdict | what was measured |", "|---|---|---|"]
    for c in result.claims:
        rows.append(f"| {_md(c.statement)} | {c.verdict} | {_md(c.text)} |")
    counts = result.to_dict()["counts"]
    return "\n".join(rows) + (f"\n\n`biaslab census --jobs 2` (transformers {transformers.__version__}, seed 0): "
                              f"{counts['audited']} of {counts['types']} model types audited, "
                              f"{counts['failed']} listed with a one-line reason; "
                              f"{fmt_fixed(result.seconds, 0)} s on 2 cores (shared with other work). A type past its time limit keeps its "
                              "audit without the perturbation check, so this table depends on the machine's load "
                              "and is not --checked.")


TABLES: dict[str, Callable[[], str]] = {
    "regression": regression_table,
    "ablate": ablate_table,
    "demo": demo_table,
    "denoise": denoise_table,
    "census": census_table,
}


def block(name: str, table: str) -> str:
    return (f"<!-- table:{name} -->\n{table}\nMeasured with `--threads {THREADS}` by "
            f"`python docs/readme_tables.py {name}`.\n<!-- /table:{name} -->")


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"<!-- table:{re.escape(name)} -->\n.*?<!-- /table:{re.escape(name)} -->", re.S)


def tables_in(text: str) -> list[str]:
    return re.findall(r"<!-- table:([\w-]+) -->", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"tables to build: {', '.join(TABLES)} [default: all]")
    parser.add_argument("--check", action="store_true", help="compare with README.md instead of writing it")
    parser.add_argument("--readme", type=Path, default=README, help="the file to read and write [default: README.md]")
    parser.add_argument("--census-from", type=Path, help="build the census table from this finished run's folder")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(TABLES))
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(TABLES)}")
    from biaslab.infra.threads import set_threads

    set_threads(THREADS)
    readme = args.readme
    text = readme.read_text(encoding="utf-8")
    new = text
    for name in args.names or list(TABLES):
        if not _pattern(name).search(new):
            print(f"README.md has no <!-- table:{name} --> block", file=sys.stderr)
            return 2
        if name == "census" and args.census_from is not None:
            from biaslab.results import load_results

            table = census_table(load_results(args.census_from))
        else:
            table = TABLES[name]()
        new = _pattern(name).sub(lambda _: block(name, table), new)
    if args.check:
        if new != text:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True), str(readme),
                                                       "generated"))
            return 1
        return 0
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
