"""The ``biaslab`` command line: a thin layer that parses options, calls the library, renders.

Every command takes ``--seed``, ``--out DIR`` (results.json, figures, report.html),
``--json`` (the result on stdout) and ``--quiet``. User mistakes raise
:class:`biaslab.infra.io.BiaslabError`; every command runs inside :func:`biaslab.infra.errors.one_line_errors`,
which prints them (and OS errors, image bombs, MemoryError) as one line on stderr with exit
code 2, and a Ctrl-C as one line with exit code 130.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .infra.errors import check_stdout_open, one_line_errors, stdout_errors
from .infra.io import BiaslabError


#: Commands in the order people use them: the tour, the experiments, the audit, then the tools.
COMMAND_ORDER = ("demo", "regression", "relu", "conv", "explore", "ablate", "denoise", "audit", "census", "report",
                 "schema")
#: Help panels: the options every command shares, and the rarely needed ones, below the command's own.
COMMON = "Output and run"
MORE = "More options"


def _metavar(param) -> str:
    """How a value is written, as people read it: N, NUMBER, TEXT, FILE, LIST; ``NAME`` for an argument."""
    if param.param_type_name == "argument":
        return param.name.upper()
    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if getattr(param, "multiple", False):
        return "LIST"
    return {int: "N", float: "NUMBER", Path: "FILE"}.get(kind, "TEXT")


def _format_options(command, ctx, formatter) -> None:
    """Arguments, then the options grouped by their ``rich_help_panel`` (plain text, no rich markup):
    the command's own options first, then :data:`MORE`, then :data:`COMMON`."""
    args, panels = [], {}
    for param in command.get_params(ctx):
        if param.metavar is None and not getattr(param, "is_flag", False):
            param.metavar = _metavar(param)
        if param.param_type_name == "argument":
            help_text = getattr(param, "help", None) or ""
            args.append((param.metavar, help_text + ("  [required]" if param.required else "")))
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        panel = getattr(param, "rich_help_panel", None) or "Options"
        if param.name == "help" and any(getattr(q, "rich_help_panel", None) == COMMON for q in command.get_params(ctx)):
            panel = COMMON  # beside the shared options, where the command has them
        panels.setdefault(panel, []).append(record)
    if args:
        with formatter.section("Arguments"):
            formatter.write_dl(args)
    order = ["Options", *(k for k in panels if k not in ("Options", MORE, COMMON)), MORE, COMMON]
    for name in order:
        if panels.get(name):
            with formatter.section(name):
                formatter.write_dl(panels[name])


#: Library parameters whose option is named otherwise, per command (the rest are ``--`` + the name).
OPTION_NAMES = {
    "relu": {"biases": "--b"},
    "conv": {"biases": "--bias", "kernels": "--kernel"},
    "regression": {"x_columns": "--x", "y_column": "--y"},
    "ablate": {"models": "--model", "datasets": "--dataset", "data_path": "--data", "shifts": "--shift"},
    "explore": {"run": "--from"},
}
_PARAMETER = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def option_names(message: str, command) -> str:
    """A library message speaks of Python parameters (```biases```); on the command line they are
    the command's options (``--b``). Names the command has no option for lose their backquotes."""
    options = {p.name: p.opts[0] for p in command.params if getattr(p, "opts", None) and p.opts[0].startswith("--")}
    options.update(OPTION_NAMES.get(command.name, {}))
    return _PARAMETER.sub(lambda m: options.get(m.group(1), m.group(1)), message)


def _options_in_errors(command, arg, call):
    """``call(arg)``; a :class:`BiaslabError` leaves it with the command's option names."""
    try:
        return call(arg)
    except BiaslabError as exc:
        raise BiaslabError(option_names(str(exc), command)) from None


class _Command(TyperCommand):
    """A command whose help groups its options in panels (plain text), and whose errors name its
    options rather than the library's parameters."""

    def invoke(self, ctx):
        return _options_in_errors(self, ctx, super().invoke)

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(param.metavar or _metavar(param))
        return pieces

    def format_options(self, ctx, formatter) -> None:
        _format_options(self, ctx, formatter)


class _Group(TyperGroup):
    """A command with an optional subcommand (``denoise [apply]``), its help and errors like :class:`_Command`'s."""

    def invoke(self, ctx):
        return _options_in_errors(self, ctx, super().invoke)

    def format_options(self, ctx, formatter) -> None:
        _format_options(self, ctx, formatter)
        self.format_commands(ctx, formatter)


class _Commands(_Group):
    """The command group: runs every command inside :func:`one_line_errors` (the one error boundary),
    and lists the commands in :data:`COMMAND_ORDER`."""

    def invoke(self, ctx: typer.Context):
        with one_line_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), names.index(n)))


#: Help text as wide as the terminal, up to 100 columns.
CONTEXT = {"max_content_width": 100}

app = typer.Typer(
    name="biaslab",
    cls=_Commands,
    help="See, compute and measure what the bias term does in activation(Σ(input * kernel) + bias).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)


def command(*args, **kwargs):
    """``app.command`` with grouped help (:class:`_Command`)."""
    return app.command(*args, cls=_Command, context_settings=CONTEXT, **kwargs)


def _seed(ctx: typer.Context, value: int) -> int:
    from .infra.validate import check_seed

    return _options_in_errors(ctx.command, value, check_seed)


def _threads(ctx: typer.Context, value: int | None) -> int | None:
    if value is not None:
        from .infra.threads import set_threads

        _options_in_errors(ctx.command, value, set_threads)
    return value


SeedOpt = Annotated[int, typer.Option(
    "--seed", rich_help_panel=COMMON, callback=_seed, help="Random seed, 0 to 2**32 − 1: the same seed gives the same results.")]
#: The classic snippet's seed: ``regression`` and ``demo`` default to it so that they reproduce its numbers.
SnippetSeedOpt = Annotated[int, typer.Option(
    "--seed", callback=_seed, rich_help_panel=COMMON,
    help="Random seed, 0 to 2**32 − 1 [default: 42, the classic snippet's np.random.seed(42)].", show_default=False)]
#: Applied while the options are parsed (its callback calls threads.set_threads), before any work.
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", rich_help_panel=COMMON, callback=_threads, help="CPU threads for torch and BLAS [default: torch's choice].")]
#: A string, not a Path: ``Path("")`` is ".", and an empty --out must be refused (outputs.out_dir_path).
OutOpt = Annotated[
    Optional[str],
    typer.Option("--out", metavar="DIR", rich_help_panel=COMMON,
                 help="Folder for results.json, figures and report [default: biaslab-out/COMMAND]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", rich_help_panel=COMMON, help="Print the result as JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", rich_help_panel=COMMON, help="Print nothing but errors (and --json output).")]
FormatOpt = Annotated[str, typer.Option("--format", rich_help_panel=COMMON, help="Figure format: png or svg.")]
DeviceOpt = Annotated[str, typer.Option("--device", rich_help_panel=COMMON, help="auto (GPU when present), cpu, cuda, cuda:N.")]


def split_list(value: str | None, cast: Callable = str, name: str = "value") -> list:
    """``"a,b,c"`` → ``[cast(a), cast(b), cast(c)]``; a clear error on a bad item."""
    if value is None:
        return []
    items = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return [cast(v) for v in items]
    except ValueError:
        raise BiaslabError(f"{name} must be a comma-separated list of numbers (got {value!r})") from None


def split_repeated(values: list[str] | None, default: str, cast: Callable = str, name: str = "value") -> list:
    """A repeatable option whose items may also be comma-separated: ``["1,2", "3"]`` → ``[1, 2, 3]``."""
    return [v for item in (values or [default]) for v in split_list(item, cast, name)]


def make_console():
    """A rich console on stdout; wide enough for tables when stdout is a pipe or a file (``COLUMNS``
    wins). A closed pipe raises BrokenPipeError, which :func:`errors.stdout_errors` reports, rather
    than rich's own silent ``SystemExit(1)``."""
    import errno

    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "") or 0) or 120
    return _Console(highlight=False, width=width)


def emit(command: str, build: Callable[[], object], out: Path | None, fmt: str, json_output: bool, quiet: bool,
         save: Callable | None = None):
    """Check the output location and stdout, lock the folder, run ``build`` (a library call returning
    a Result), save (``save(result, out_dir, fmt)``, default :func:`outputs.save_outputs`), print.

    Everything that can be checked without the result is checked before ``build`` runs; the
    folder's lock (``OUT/.biaslab.lock``) is held until the files are written.
    """
    from .outputs import check_format, check_same_command, locked_out_dir, out_dir_path, save_outputs
    from .render import renderer
    from .results import payload

    out_dir = out_dir_path(out, command)
    check_format(fmt)
    check_same_command(out_dir, command)
    if json_output or not quiet:
        check_stdout_open()
    with locked_out_dir(out_dir):
        result = build()
        saved = (save or save_outputs)(result, out_dir, fmt)
    with stdout_errors():
        if json_output:
            print(json.dumps(payload(result)))
        elif not quiet:
            render = renderer(result.command)
            console = make_console()
            console.print(render.summary(result), soft_wrap=False)
            if hasattr(render, "console_table"):
                console.print(render.console_table(result))
            console.print(f"[dim]results: {saved.results}  report: {saved.report}[/dim]")
    return result


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


@command()
def regression(
    n: Annotated[int, typer.Option(help="Number of points on the line.")] = 50,
    slope: Annotated[float, typer.Option(help="True slope.")] = 3.0,
    intercept: Annotated[float, typer.Option(help="True intercept (the bias the data needs).")] = 2.0,
    noise: Annotated[float, typer.Option(help="Standard deviation of the Gaussian noise.")] = 2.0,
    x_min: Annotated[float, typer.Option(help="Smallest input.")] = 0.0,
    x_max: Annotated[float, typer.Option(help="Largest input.")] = 10.0,
    test_fraction: Annotated[
        Optional[float], typer.Option(rich_help_panel=MORE, help="Hold out this fraction of points and report test MSE too.")
    ] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Real data instead of the line: diabetes.")] = None,
    feature: Annotated[
        Optional[str], typer.Option(rich_help_panel=MORE, help="Diabetes feature to regress on (e.g. bmi, bp) or 'all' [default: bmi].")
    ] = None,
    csv: Annotated[Optional[Path], typer.Option(rich_help_panel=MORE, help="Read data from a CSV file with a header row.")] = None,
    x: Annotated[Optional[str], typer.Option("--x", rich_help_panel=MORE, help="CSV input column(s), comma-separated.")] = None,
    y: Annotated[Optional[str], typer.Option("--y", rich_help_panel=MORE, help="CSV output column.")] = None,
    seed: SnippetSeedOpt = 42,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit y = 3x + 2 + noise with and without bias: the classic demo, exactly, and on real data."""
    from .experiments.regression.run import run_regression

    emit(
        "regression",
        lambda: run_regression(
            n=n, slope=slope, intercept=intercept, noise=noise, x_min=x_min, x_max=x_max, seed=seed,
            test_fraction=test_fraction, dataset=dataset, feature=feature, csv=csv,
            x_columns=split_list(x), y_column=y,
        ),
        out, fmt, json_output, quiet,
    )


@command()
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
    from .experiments.relu.run import run_relu

    def build():
        biases = split_repeated(b, "-2,-1,0,1,2", float, "--b")
        pw = split_list(plane_w, float, "--plane-w")
        if len(pw) != 2:
            raise BiaslabError(f"--plane-w needs two numbers w1,w2 (got {plane_w!r})")
        xr = split_list(x_range, float, "--x-range") if x_range else None
        if xr is not None and len(xr) != 2:
            raise BiaslabError(f"--x-range needs two numbers LO,HI (got {x_range!r})")
        return run_relu(w=w, biases=biases, activation=activation, plane_w=tuple(pw),
                        x_range=tuple(xr) if xr else None, seed=seed)

    emit("relu", build, out, fmt, json_output, quiet)


@command()
def demo(
    threads: ThreadsOpt = None,
    seed: SnippetSeedOpt = 42,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run every experiment on quick settings and write one HTML report, opening with the classic claims."""
    from .experiments.demo import run_demo
    from .outputs import save_demo

    emit("demo", lambda: run_demo(seed=seed, show_progress=not quiet), out, fmt, json_output, quiet,
         save=lambda res, out_dir, fmt: save_demo(res, res.parts, out_dir, fmt))


@command()
def report(
    dirs: Annotated[list[Path], typer.Argument(
        metavar="DIR...",
        help="Directories written by biaslab commands (each holds a results.json). One is rebuilt in place; "
             "several runs of one command are rendered side by side.")],
    out: Annotated[Optional[str], typer.Option(
        "--out", metavar="DIR", help="Write figures and report here [default: the directory itself; biaslab-out/report for several].")] = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rebuild figures, report.html and report.md from results.json alone (no experiment is re-run)."""
    from .outputs import rebuild

    if json_output or not quiet:
        check_stdout_open()
    saved = rebuild(list(dirs), out, fmt)
    with stdout_errors():
        if json_output:
            print(json.dumps({"report": str(saved.report), "figures": [str(f) for f in saved.figures]}))
        elif not quiet:
            print(saved.report)


@command()
def schema(
    command: Annotated[str, typer.Argument(
        help="The command whose results.json schema to print: regression, relu, conv, ablate, denoise, "
             "denoise-apply, audit, demo.")],
    out: Annotated[Optional[str], typer.Option(
        "--out", metavar="FILE", help="Write the JSON Schema to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of a command's results.json (what `biaslab report` accepts), for other tools."""
    from .results import RESULT_TYPES
    from .results.schema import json_schema

    name = command.replace(" ", "-")
    if name not in RESULT_TYPES:
        raise BiaslabError(f"unknown command {command!r}; choose one of {', '.join(RESULT_TYPES)}")
    if out is not None:
        from .infra.io import atomic_write_text
        from .infra.validate import writable_file

        if not out:
            raise BiaslabError("--out is empty; pass a file name, e.g. --out regression.schema.json")
        target = writable_file("--out", out)
        atomic_write_text(target, json.dumps(json_schema(name), indent=2) + "\n")
        return
    text = json.dumps(json_schema(name), indent=2)
    with stdout_errors():
        print(text)


@command()
def conv(
    builtin: Annotated[
        Optional[str], typer.Option(help="scikit-image picture: camera, astronaut, coffee, coins, ... [default: camera].")
    ] = None,
    image: Annotated[Optional[Path], typer.Option(rich_help_panel=MORE, help="Your own image file (PNG, JPEG, ...) instead.")] = None,
    color: Annotated[bool, typer.Option("--color", rich_help_panel=MORE, help="Use the 3 colour channels instead of grey.")] = False,
    kernel: Annotated[
        Optional[list[str]],
        typer.Option("--kernel", help="sobel-x, sobel-y, laplacian, gaussian, sharpen, emboss; repeat or "
                     "comma-separate [default: gaussian,sobel-x,laplacian when no kernel is given]."),
    ] = None,
    kernel_file: Annotated[
        Optional[Path], typer.Option(rich_help_panel=MORE, help="Kernel weights: .npy of (kH,kW), (C,kH,kW) or (K,C,kH,kW), or a .txt grid.")
    ] = None,
    random: Annotated[int, typer.Option("--random", rich_help_panel=MORE, help="Add this many random (He-normal) kernels.")] = 0,
    kernel_size: Annotated[int, typer.Option(rich_help_panel=MORE, help="Size of the random kernels.")] = 3,
    bias: Annotated[
        Optional[list[str]], typer.Option("--bias", help="Bias value(s); repeat or comma-separate [default: -0.5,0,0.5].")
    ] = None,
    activation: Annotated[str, typer.Option(help="relu, leaky_relu, sigmoid, tanh, gelu or identity.")] = "relu",
    explain: Annotated[
        Optional[str], typer.Option(help="ROW,COL of an output value to break down: patch, kernel, product, Σ, +b.")
    ] = None,
    stride: Annotated[int, typer.Option(rich_help_panel=MORE, help="Stride of the convolution.")] = 1,
    padding: Annotated[str, typer.Option(rich_help_panel=MORE, help="'same' (output as large as the image), 'valid' or an int.")] = "same",
    max_size: Annotated[int, typer.Option(rich_help_panel=MORE, help="Block-average larger images down to at most this many pixels a side.")] = 512,
    check_torch: Annotated[
        bool, typer.Option(rich_help_panel=MORE, help="Also compute the maps with torch.nn.functional.conv2d and report the difference.")
    ] = True,
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Conv feature maps activation(Σ(input * kernel) + b) of an image, with and without bias."""
    from .experiments.conv.run import run_conv

    def build():
        biases = split_repeated(bias, "-0.5,0,0.5", float, "--bias")
        names = split_repeated(kernel, "")
        position = None
        if explain is not None:
            position = split_list(explain, int, "--explain")
            if len(position) != 2:
                raise BiaslabError(f"--explain needs ROW,COL, two integers (got {explain!r})")
        pad = int(padding) if padding.lstrip("-").isdigit() else padding
        return run_conv(
            builtin=builtin, image=image, color=color, kernels=names, kernel_file=kernel_file, random=random,
            kernel_size=kernel_size, biases=biases, activation=activation,
            explain=tuple(position) if position else None, stride=stride, padding=pad, max_size=max_size,
            check_torch=check_torch, seed=seed, progress=not quiet,
        )

    emit("conv", build, out, fmt, json_output, quiet)


@command()
def explore(
    builtin: Annotated[
        Optional[str], typer.Option(help="scikit-image picture for the conv panel [default: camera, as biaslab conv].")
    ] = None,
    image: Annotated[Optional[Path], typer.Option(rich_help_panel=MORE, help="Your own image file (PNG, JPEG, ...) instead.")] = None,
    random: Annotated[int, typer.Option("--random", rich_help_panel=MORE, help="Random (He-normal) kernels to offer beside the bank.")] = 2,
    max_size: Annotated[int, typer.Option(rich_help_panel=MORE, help="Block-average larger images down to at most this many pixels a side.")] = 512,
    from_dir: Annotated[Optional[Path], typer.Option(
        "--from", help="Add a panel for a saved run: the --out directory of biaslab denoise (σ slider) or "
                       "biaslab ablate (shift slider).")] = None,
    open_page: Annotated[bool, typer.Option("--open", rich_help_panel=MORE, help="Open the page in the default web browser.")] = False,
    seed: SeedOpt = 0,
    out: Annotated[Optional[str], typer.Option("--out", metavar="DIR", help="Output directory [default: biaslab-out/explore].")] = None,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write explore.html: move the bias and watch (threshold, 2-D unit, regression, conv). Offline, one file."""
    from .explore import write_explorer
    from .outputs import locked_out_dir, out_dir_path

    with locked_out_dir(out_dir_path(out, "explore")) as out_dir:
        page = write_explorer(out_dir, builtin=builtin, image=image, max_size=max_size, random=random, seed=seed,
                              run=from_dir)
    if json_output:
        print(json.dumps({"explorer": str(page), "bytes": page.stat().st_size}))
    elif not quiet:
        print(page)
    if open_page:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())


@command()
def ablate(
    model: Annotated[
        Optional[list[str]],
        typer.Option(help="linear, mlp, cnn, cnn-bn or FILE.py:factory; repeatable [default: cnn]."),
    ] = None,
    dataset: Annotated[
        Optional[list[str]],
        typer.Option(help="digits, faces, breast_cancer, wine, iris; repeatable [default: digits]."),
    ] = None,
    data: Annotated[
        Optional[Path],
        typer.Option("--data", rich_help_panel=MORE, help="Your data: MNIST IDX folder, image folder (a subfolder per class) or .npz (X, y)."),
    ] = None,
    variants: Annotated[
        Optional[list[str]],
        typer.Option(help="with-bias, no-bias, conv-no-bias, head-no-bias, audit (what the audit calls redundant); "
                          "repeatable [default: with-bias,no-bias]."),
    ] = None,
    drop: Annotated[
        Optional[list[str]],
        typer.Option("--drop", help="Also compare a variant without the biases matching this glob ('*.in_proj_bias'); repeatable."),
    ] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option(metavar="N|auto", help="Seeds, 2 to 1000 [default: 5; 3 with --quick], or auto: add seeds "
                                             "until every comparison is decided."),
    ] = None,
    max_seeds: Annotated[
        Optional[int], typer.Option(rich_help_panel=MORE, help="With --seeds auto: the last look [default: 20].")
    ] = None,
    spending: Annotated[
        str, typer.Option(rich_help_panel=MORE, help="With --seeds auto: α spending, pocock or obrien-fleming.")
    ] = "pocock",
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs [default: per model, see the README].")] = None,
    lr: Annotated[Optional[float], typer.Option(rich_help_panel=MORE, help="Learning rate [default: per model].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(rich_help_panel=MORE, help="Mini-batch size [default: per model].")] = None,
    optimizer: Annotated[str, typer.Option(rich_help_panel=MORE, help="adam or sgd.")] = "adam",
    momentum: Annotated[float, typer.Option(rich_help_panel=MORE, help="SGD momentum, in [0, 1).")] = 0.0,
    weight_decay: Annotated[float, typer.Option(rich_help_panel=MORE, help="L2 weight decay.")] = 0.0,
    decay_bias: Annotated[
        bool, typer.Option("--decay-bias/--no-decay-bias", rich_help_panel=MORE, help="Weight decay on biases too.")
    ] = True,
    input_offset: Annotated[
        float, typer.Option(rich_help_panel=MORE, help="Add this constant to every input (un-centred data).")
    ] = 0.0,
    standardize: Annotated[
        bool, typer.Option("--standardize/--no-standardize", rich_help_panel=MORE, help="Z-score inputs (training statistics).")
    ] = True,
    max_train: Annotated[Optional[int], typer.Option(rich_help_panel=MORE, help="Use at most this many training samples (stratified).")] = None,
    shift: Annotated[
        Optional[str], typer.Option(help="Test-time shifts: brightness, contrast, noise [default: all].")
    ] = None,
    shift_levels: Annotated[
        Optional[str], typer.Option(help="Levels of the one --shift; verdicts at the one furthest from no shift.")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Few epochs and 3 seeds: about a minute on 2 CPU cores.")] = False,
    engine: Annotated[str, typer.Option(rich_help_panel=MORE, help="local, or ray (a Ray task per configuration).")] = "local",
    address: Annotated[
        Optional[str], typer.Option(rich_help_panel=MORE, help="Ray cluster HOST:PORT [default: $RAY_ADDRESS, else a local Ray].")
    ] = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train the same network with and without bias over seeds; paired statistics and a verdict.

    Runs go to OUT/runs.jsonl as they finish (the same command resumes). Verdicts: an exact
    sign-flip test, Holm over the run, equivalence within ±1 pp (see the README).
    """
    from .experiments.ablate import AblationInterrupted, run_ablate
    from .outputs import out_dir_path

    out_dir = out_dir_path(out, "ablate")
    if seeds is None or seeds.strip().lower() == "auto":
        seed_count = None if seeds is None else "auto"
    else:
        try:
            seed_count = int(seeds)
        except ValueError:
            raise BiaslabError(f"--seeds must be a whole number or 'auto' (got {seeds!r})") from None
    if max_seeds is not None and seed_count != "auto":
        raise BiaslabError("--max-seeds is the last look of --seeds auto; use it with --seeds auto")

    def note(line: str) -> None:
        if not quiet:
            print(f"biaslab: note: {line}", file=sys.stderr)

    def build():
        with warnings.catch_warnings():  # torch's note that its fast CPU kernel skips LSTM projections
            warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
            return run_ablate(
                models=split_repeated(model, "cnn"), datasets=split_repeated(dataset, "") if dataset else None,
                data_path=data, variants=split_repeated(variants, "with-bias,no-bias"), drop=drop, seeds=seed_count,
                epochs=epochs, lr=lr,
                batch_size=batch_size, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay,
                decay_bias=decay_bias, input_offset=input_offset, standardize=standardize, quick=quick,
                max_train=max_train, shifts=split_list(shift) if shift is not None else None,
                shift_levels=split_list(shift_levels, float, "--shift-levels") if shift_levels is not None else None,
                device=device, threads=threads, engine=engine, address=address, seed=seed, out_dir=out_dir,
                show_progress=not quiet, notify=note, ray_background_shutdown=True, max_seeds=max_seeds,
                spending=spending,
            )

    try:
        emit("ablate", build, out_dir, fmt, json_output, quiet)
    except KeyboardInterrupt as exc:  # AblationInterrupted says what was saved
        from .infra.errors import ctrl_c_pressed

        if not isinstance(exc, AblationInterrupted) and ctrl_c_pressed() is False:
            raise  # raised by the user's code, not a Ctrl-C: the error boundary names it
        runs = out_dir / "runs.jsonl"
        message = str(exc) if isinstance(exc, AblationInterrupted) else (
            f"interrupted; finished runs are kept in {runs}; run the same command again to resume" if runs.is_file()
            else "interrupted before any run finished; nothing was saved"
        )
        print(f"biaslab: {message}", file=sys.stderr)
        raise typer.Exit(130) from None


denoise_app = typer.Typer(cls=_Group, rich_markup_mode=None, subcommand_metavar="[apply [OPTIONS]]",
                          context_settings=CONTEXT)
app.add_typer(denoise_app, name="denoise")


@denoise_app.callback(invoke_without_command=True)
def denoise(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller net, σ ∈ [0, 20], 400 steps: about a minute on 2 CPU cores.")
    ] = False,
    sigma_max: Annotated[
        Optional[float],
        typer.Option(help="Train on σ ∈ [0, SIGMA_MAX], 0-255 scale, at most 255 [default: 10; 20 with --quick]."),
    ] = None,
    images: Annotated[
        Optional[Path], typer.Option(rich_help_panel=MORE, help="Folder of your images (the last fifth is held out for testing).")
    ] = None,
    depth: Annotated[Optional[int], typer.Option(rich_help_panel=MORE, help="Number of conv layers, 2-64 [default: 8; 6 with --quick].")] = None,
    width: Annotated[Optional[int], typer.Option(rich_help_panel=MORE, help="Channels per hidden layer, 1-512 [default: 32].")] = None,
    steps: Annotated[Optional[int], typer.Option(rich_help_panel=MORE, help="Training steps [default: 1200; 400 with --quick].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(rich_help_panel=MORE, help="Patches per step [default: 32].")] = None,
    patch_size: Annotated[Optional[int], typer.Option(rich_help_panel=MORE, help="Patch side in pixels [default: 32; 24 with --quick].")] = None,
    lr: Annotated[Optional[float], typer.Option(rich_help_panel=MORE, help="Adam learning rate, at most 1 [default: 0.002].")] = None,
    eval_crop: Annotated[
        Optional[int], typer.Option(rich_help_panel=MORE, help="Side of the centre crop of each test image [default: 192; 128 with --quick].")
    ] = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Bias-free denoising (Mohan et al., ICLR 2020): train on low noise, test far outside it.

    Trains a DnCNN with biases and its bias-free twin on the same noisy patches with
    σ ∈ [0, SIGMA_MAX], then compares them on held-out images up to σ = 100, and says whether
    the bias-free one generalises (ahead by ≥ 1 dB at σ = 100, which must be ≥ 5× SIGMA_MAX).
    Also measures positive homogeneity, f(α·y) = α·f(y) for α > 0, and shows the bias-free
    network as an adaptive linear filter f(y) = J(y)·y. The weights are saved in OUT for
    `biaslab denoise apply`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .experiments.denoise import run_denoise
    from .outputs import out_dir_path

    out_dir = out_dir_path(out, "denoise")

    def build():
        return run_denoise(
            quick=quick, depth=depth, width=width, steps=steps, batch_size=batch_size, patch_size=patch_size,
            sigma_max=sigma_max, lr=lr, eval_crop=eval_crop, images=images, seed=seed, device=device,
            save_dir=out_dir, show_progress=not quiet,
        )

    emit("denoise", build, out_dir, fmt, json_output, quiet)


@denoise_app.command("apply", cls=_Command, context_settings=CONTEXT)
def denoise_apply(
    model: Annotated[Path, typer.Option(help="Weights saved by `biaslab denoise` (e.g. denoiser_bias_free.pt).")],
    image: Annotated[Path, typer.Option(help="Your image (PNG, JPEG, ...); colour is kept, any size.")],
    sigma: Annotated[float, typer.Option(help="Gaussian noise to add first, 0-255 scale, at most 255 (0: denoise as is).")] = 25.0,
    compare: Annotated[bool, typer.Option(
        "--compare", help="Also run the twin network saved next to --model (with-bias <-> bias-free), side by side.")] = False,
    tile: Annotated[int, typer.Option(
        help="Denoise in overlapping tiles of this side (memory stays bounded for large photos).")] = 512,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Add noise of level SIGMA to an image and denoise it with a saved network; writes PNGs and PSNR.

    A colour image given to a one-channel network is denoised channel by channel. Large images are
    denoised in overlapping tiles blended with a window: the result equals the untiled one.
    """
    from .experiments.denoise import apply_denoiser
    from .outputs import out_dir_path

    out_dir = out_dir_path(out, "denoise-apply")

    def build():
        return apply_denoiser(model, image, sigma, seed=seed, device=device, compare=compare, tile=tile,
                              save_dir=out_dir, show_progress=not quiet)

    emit("denoise-apply", build, out_dir, fmt, json_output, quiet)


@command()
def audit(
    target: Annotated[str, typer.Argument(
        metavar="TARGET",
        help="file.py:factory or package.module:factory (IMPORTS AND RUNS THAT CODE: audit only code you "
             "trust), a state_dict FILE.pt with --arch, hf:bert / hf:gpt2 / hf:vit / hf:llama / hf:distilbert / "
             "hf:qwen2 (Hugging Face, built offline with random weights), or a built-in: resnet18, vgg11_bn, "
             "mobilenet_v2, transformer, resnet50, linear, mlp, cnn, cnn-bn.")],
    arch: Annotated[Optional[str], typer.Option(rich_help_panel=MORE, 
        help="Architecture of a FILE.pt state_dict: a built-in name or file.py:factory (runs that code). "
             "The file itself is loaded with weights_only=True; pickled code is refused.")] = None,
    input_shape: Annotated[Optional[str], typer.Option(
        help="Example input N,C,H,W (batch first; N >= 2 for the train-mode check) [default: 2,<model's own>].")] = None,
    input_ids: Annotated[Optional[str], typer.Option(rich_help_panel=MORE, 
        help="Example input of random token ids N,L (text models; the default for hf: text models is 2,8).")] = None,
    config: Annotated[Optional[str], typer.Option(rich_help_panel=MORE, 
        help="JSON configuration fields for an hf: model, e.g. '{\"num_hidden_layers\": 12, \"hidden_size\": "
             "768}' (starts from a tiny configuration; nothing is downloaded).")] = None,
    data: Annotated[Optional[str], typer.Option(
        help="Measure contributions on data: random (inputs of --input-shape), digits, faces, ... or a data path.")] = None,
    samples: Annotated[str, typer.Option(rich_help_panel=MORE, metavar="N", help="Number of data inputs used for contributions (1 to 100,000).")] = "128",
    fix: Annotated[Optional[Path], typer.Option(
        help="Write a state_dict without the redundant biases to this .pt file, after checking on sample inputs, "
             "in train and eval mode, that the outputs are unchanged.")] = None,
    fold: Annotated[bool, typer.Option(
        "--fold",
        help="With --fix: also fold every foldable bias: BatchNorm into the layer before it, shifts and attention "
             "value biases into the layer they reach (inference only; checked in eval mode, in float64 too).")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify",
        help="Perturb every redundant bias (float64, train mode) and confirm the output does not move; adds a "
             "'verified' column.")] = False,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
) -> None:
    """Audit every bias of a PyTorch model: redundant, foldable or active; contributions; a checked fix."""

    def build():
        from .experiments.audit import run_audit
        from .experiments.audit.run import input_ids_arg, input_shape_arg

        return run_audit(target, arch=arch, input_shape=input_shape_arg(input_shape),
                         input_ids=input_ids_arg(input_ids), config=config, data=data, samples=samples,
                         fix=fix, fold=fold, verify=verify, seed=seed, device=device,
                         show_progress=not quiet)

    emit("audit", build, out, fmt, json_output, quiet)


@command()
def census(
    only: Annotated[Optional[str], typer.Option(
        help="Audit only these model types, comma-separated (e.g. bert,gpt2,vit) [default: every type "
             "transformers can build with AutoModel].")] = None,
    engine: Annotated[str, typer.Option(help="local (child processes here) or ray (one Ray task per model type).")] = "local",
    address: Annotated[
        Optional[str], typer.Option(help="With --engine ray: join the cluster at HOST:PORT [default: $RAY_ADDRESS, else a local Ray].")
    ] = None,
    jobs: Annotated[int, typer.Option(help="With --engine local: model types audited at once (1 to 64).")] = 1,
    time_limit: Annotated[float, typer.Option(
        help="Seconds one model type may take (1 to 3600); a type still running then is listed as timed out.")] = 60.0,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    fmt: FormatOpt = "png",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Which biases in today's architectures do nothing? Audits every transformers model type, built
    offline at a tiny size with random weights, checks each status by perturbation, and counts the
    biases at the configuration's default size. Writes census.csv and a sortable census.html too."""

    def note(line: str) -> None:
        if not quiet:
            print(f"biaslab: {line}", file=sys.stderr, flush=True)

    def build():
        from .experiments.census import run_census

        return run_census(only=split_list(only) if only is not None else None, seed=seed, engine=engine, jobs=jobs,
                          threads=threads, time_limit=time_limit, device=device, address=address,
                          show_progress=False, notify=note, ray_background_shutdown=True)

    emit("census", build, out, fmt, json_output, quiet)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run ``biaslab ARGV`` and return the exit code (see :mod:`biaslab.infra.errors`)."""
    # torch's OpenMP threads spin-wait by default, which costs several times the run time
    # on a busy machine with few cores; set before torch is imported (the user's value wins).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        # Each command runs inside one_line_errors (see _Commands); this handles what comes before
        # a command starts: top-level options, an unknown command, building the parser.
        with one_line_errors():
            code = typer.main.get_command(app).main(args=argv, prog_name="biaslab", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
