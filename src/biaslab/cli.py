"""The ``biaslab`` command line: a thin layer that parses options, calls the library, renders.

Every command takes ``--seed``, ``--out DIR`` (results.json, figures, report.html),
``--json`` (the result on stdout) and ``--quiet``. User mistakes raise
:class:`biaslab.io.BiaslabError`; they are printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .io import BiaslabError, to_jsonable

app = typer.Typer(
    name="biaslab",
    help="See, compute and measure what the bias term does in activation(Σ(input * kernel) + bias).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; results are deterministic for a seed.")]
OutOpt = Annotated[
    Optional[Path],
    typer.Option("--out", help="Output directory for results.json, figures and report [default: biaslab-out/<command>]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors (and --json output).")]
FormatOpt = Annotated[str, typer.Option("--format", help="Figure format: png or svg.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (GPU when present), cpu, cuda, cuda:N.")]


def fail(message: str) -> typer.Exit:
    """Print one line on stderr and return the exit-code-2 exception to raise."""
    print(f"biaslab: error: {message}", file=sys.stderr)
    return typer.Exit(2)


def split_list(value: str | None, cast: Callable = str, name: str = "value") -> list:
    """``"a,b,c"`` → ``[cast(a), cast(b), cast(c)]``; a clear error on a bad item."""
    if value is None:
        return []
    items = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return [cast(v) for v in items]
    except ValueError:
        raise BiaslabError(f"{name} must be a comma-separated list of numbers (got {value!r})") from None


def show_progress(quiet: bool, json_output: bool) -> bool:
    from .progress import progress_enabled

    return progress_enabled(quiet, json_output)


def emit(command: str, build: Callable[[], object], out: Path | None, fmt: str, json_output: bool, quiet: bool) -> None:
    """Run ``build`` (a library call returning a Result), save outputs, print the result.

    BiaslabError from any step becomes one stderr line and exit code 2.
    """
    from .outputs import save_outputs

    try:
        result = build()
        saved = save_outputs(result, out if out is not None else Path("biaslab-out") / command, fmt)
    except BiaslabError as exc:
        raise fail(str(exc)) from None
    if json_output:
        print(json.dumps(to_jsonable(result.to_dict())))
    elif not quiet:
        from rich.console import Console

        console = Console(highlight=False)
        console.print(result.summary(), soft_wrap=False)
        console.print(f"[dim]results: {saved.results}  report: {saved.report}[/dim]")


def _version(value: bool) -> None:
    if value:
        print(f"biaslab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """See, compute and measure what the bias term does in activation(Σ(input * kernel) + bias)."""


@app.command()
def regression(
    n: Annotated[int, typer.Option(help="Number of points on the line.")] = 50,
    slope: Annotated[float, typer.Option(help="True slope.")] = 3.0,
    intercept: Annotated[float, typer.Option(help="True intercept (the bias the data needs).")] = 2.0,
    noise: Annotated[float, typer.Option(help="Standard deviation of the Gaussian noise.")] = 2.0,
    x_min: Annotated[float, typer.Option(help="Smallest input.")] = 0.0,
    x_max: Annotated[float, typer.Option(help="Largest input.")] = 10.0,
    test_fraction: Annotated[
        Optional[float], typer.Option(help="Hold out this fraction of points and report test MSE too.")
    ] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Real data instead of the line: diabetes.")] = None,
    feature: Annotated[
        Optional[str], typer.Option(help="Diabetes feature to regress on (e.g. bmi, bp) or 'all' [default: bmi].")
    ] = None,
    csv: Annotated[Optional[Path], typer.Option(help="Read data from a CSV file with a header row.")] = None,
    x: Annotated[Optional[str], typer.Option("--x", help="CSV input column(s), comma-separated.")] = None,
    y: Annotated[Optional[str], typer.Option("--y", help="CSV output column.")] = None,
    seed: SeedOpt = 42,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit y = 3x + 2 + noise with and without bias: the classic demo, exactly, and on real data."""
    from .regression import run_regression

    emit(
        "regression",
        lambda: run_regression(
            n=n, slope=slope, intercept=intercept, noise=noise, x_min=x_min, x_max=x_max, seed=seed,
            test_fraction=test_fraction, dataset=dataset, feature=feature, csv=csv,
            x_columns=split_list(x), y_column=y,
        ),
        out, fmt, json_output, quiet,
    )


@app.command()
def relu(
    w: Annotated[float, typer.Option("--w", help="Weight of the 1-D unit.")] = 1.0,
    b: Annotated[
        Optional[list[str]], typer.Option("--b", help="Bias value(s); repeat or comma-separate [default: -2,-1,0,1,2].")
    ] = None,
    activation: Annotated[
        str, typer.Option(help="relu, leaky_relu, sigmoid, tanh, gelu or identity.")
    ] = "relu",
    plane_w: Annotated[str, typer.Option(help="Weights w1,w2 of the 2-D unit.")] = "1,1",
    x_range: Annotated[Optional[str], typer.Option(help="Plotted input range LO,HI [default: around the thresholds].")] = None,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Bias as the ReLU threshold: a unit fires only when w·x exceeds −b."""
    from .activations import run_relu

    def build():
        biases = [v for item in (b or ["-2,-1,0,1,2"]) for v in split_list(item, float, "--b")]
        pw = split_list(plane_w, float, "--plane-w")
        if len(pw) != 2:
            raise BiaslabError(f"--plane-w needs two numbers w1,w2 (got {plane_w!r})")
        xr = split_list(x_range, float, "--x-range") if x_range else None
        if xr is not None and len(xr) != 2:
            raise BiaslabError(f"--x-range needs two numbers LO,HI (got {x_range!r})")
        return run_relu(w=w, biases=biases, activation=activation, plane_w=tuple(pw),
                        x_range=tuple(xr) if xr else None, seed=seed)

    emit("relu", build, out, fmt, json_output, quiet)


@app.command()
def demo(
    seed: SeedOpt = 42,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run every experiment on quick settings and write one HTML report."""
    from .demo import run_demo

    try:
        res = run_demo(out if out is not None else Path("biaslab-out") / "demo", seed=seed, fmt=fmt,
                       show_progress=show_progress(quiet, json_output))
    except BiaslabError as exc:
        raise fail(str(exc)) from None
    if json_output:
        print(json.dumps(to_jsonable(res.to_dict())))
    elif not quiet:
        print(res.report)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
