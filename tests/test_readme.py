"""README.md agrees with the CLI: every `biaslab ...` example parses with the options it shows."""

import re
import shlex
from pathlib import Path

import pytest
from typer.main import get_command

from biaslab.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    inline = re.findall(r"`(biaslab [^`\n]+)`", text)
    fenced = [line.strip() for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
              for line in block.splitlines() if line.strip().startswith("biaslab ")]
    commands = []
    for example in inline + fenced:
        example = example.split("  #")[0].split(" && ")[0].strip()
        commands.append(example)
    return list(dict.fromkeys(commands))


def parse(argv: list[str]):
    """Parse ``argv`` down to the leaf command without running it."""
    command = get_command(app)
    ctx = command.make_context("biaslab", list(argv))
    while hasattr(command, "resolve_command"):  # a group (typer may vendor its own click)
        pending = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not pending:
            break
        name, command, rest = command.resolve_command(ctx, pending)
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


EXAMPLES = readme_examples()


def test_the_readme_has_examples_of_every_command():
    used = {shlex.split(e)[1] for e in EXAMPLES}
    assert used >= {"regression", "relu", "conv", "ablate", "denoise", "audit", "demo", "report", "explore"}


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_example_parses(example):
    argv = shlex.split(example)[1:]
    if argv[-1] in ("--help", "--version"):
        return
    try:
        parse(argv)
    except Exception as exc:  # click's UsageError: unknown option, bad value type, missing argument
        if not hasattr(exc, "format_message"):
            raise
        if len(argv) == 1 and "Missing argument" in exc.format_message():
            return  # prose naming the command, e.g. "`biaslab audit` checks ..."
        pytest.fail(f"README example `{example}` does not parse: {exc.format_message()}")
