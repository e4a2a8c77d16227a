"""README's number tables come from one script (docs/readme_tables.py), and reproduce.

The regression table is checked in the default run; the tables that train networks in ``-m slow``.
The suite runs on one thread (conftest), as the script does, so the sums round the same way.
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "docs" / "readme_tables.py")
readme_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_tables)


def test_every_table_in_the_readme_is_generated_and_every_generated_table_is_there():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = readme_tables.tables_in(text)
    assert sorted(found) == sorted(readme_tables.TABLES) and len(found) == len(set(found))
    for name in found:
        assert f"Measured with `--threads 1` by `python docs/readme_tables.py {name}`" in text


def test_check_fails_when_the_readme_drifts(tmp_path, capsys):
    drifted = tmp_path / "README.md"
    drifted.write_text((ROOT / "README.md").read_text(encoding="utf-8").replace("4.4679", "4.47"), encoding="utf-8")
    assert readme_tables.main(["--check", "--readme", str(drifted), "regression"]) == 1
    assert "-| without bias (through the origin) | 3.200 | 0 (none) | 4.47 |" in capsys.readouterr().out


def test_the_regression_table_is_generated():
    assert readme_tables.main(["--check", "regression"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ablate", "demo", "denoise"])
def test_the_training_tables_reproduce(name):
    assert readme_tables.main(["--check", name]) == 0
