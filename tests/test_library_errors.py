"""Library errors speak Python: they name parameters (```seeds```), never command-line flags. The CLI
turns the names into its options (``cli.option_names``)."""

import ast
import re
from pathlib import Path

import pytest

import biaslab
from biaslab.cli import app, option_names
from biaslab.infra.errors import BiaslabError

PACKAGE = Path(biaslab.__file__).parent
#: The command line itself may name its flags: the CLI, the run folder it writes (outputs.py, used by
#: the CLI alone) and the boundary that prints its errors.
CLI_MODULES = {"cli.py", "__main__.py", "outputs.py", "errors.py"}
FLAG = re.compile(r"(?<![\w`-])--[a-z][a-z-]*")


def _error_messages():
    """(file, line, text) of every string literal inside ``raise BiaslabError(...)`` in the library."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in CLI_MODULES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                    getattr(node.exc.func, "id", getattr(node.exc.func, "attr", None)) == "BiaslabError":
                for sub in ast.walk(node.exc):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        yield path.relative_to(PACKAGE), sub.lineno, sub.value


def test_no_library_error_names_a_flag():
    offenders = [f"{p}:{line}: {text!r}" for p, line, text in _error_messages()
                 if FLAG.search(re.sub(r"`[^`]*`", "", text))]  # a shell command in backquotes may take flags
    assert not offenders, "library errors naming flags:\n" + "\n".join(offenders)


def test_the_cli_names_its_options_for_the_library_parameters():
    import typer

    group = typer.main.get_command(app)
    relu, ablate = group.commands["relu"], group.commands["ablate"]
    assert option_names("`biases` must be in [−1e6, 1e6]", relu) == "--b must be in [−1e6, 1e6]"
    assert option_names("`plane_w` needs two numbers", relu) == "--plane-w needs two numbers"
    assert option_names("`models` and `seeds`", ablate) == "--model and --seeds"
    assert option_names("`nothing_like_this` stays a word", ablate) == "nothing_like_this stays a word"


@pytest.mark.parametrize("argv,line", [
    (["regression", "--n", "1"], "--n must be between 3 and"),
    (["relu", "--b", "1e9"], "--b must be in [−1e6, 1e6]"),
    (["conv", "--stride", "0", "--no-check-torch"], "--stride must be between 1 and"),
])
def test_a_library_refusal_reaches_the_terminal_with_the_flag(argv, line, tmp_path):
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, [*argv, "--out", str(tmp_path)])
    assert res.exit_code == 2 and line in res.stderr and "`" not in res.stderr, res.stderr


def test_library_calls_name_parameters():
    from biaslab.experiments.relu.run import run_relu

    with pytest.raises(BiaslabError, match=r"^`biases` must be in"):
        run_relu(biases=[1e9])
