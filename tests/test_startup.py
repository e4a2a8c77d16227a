"""Light start: ``--help`` loads neither torch nor matplotlib; the NumPy commands never load torch."""

import json
import subprocess
import sys

import pytest

PROBE = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print(json.dumps([m for m in ('torch', 'matplotlib') if m in sys.modules]), "
    "file=sys.stderr))\n"
    "sys.argv = ['biaslab', *sys.argv[1:]]\n"
    "import runpy\nrunpy.run_module('biaslab', run_name='__main__')\n"
)


def heavy_imports(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["regression", "--help"], ["ablate", "--help"], ["--version"]])
def test_help_imports_neither_torch_nor_matplotlib(args):
    assert heavy_imports(*args) == []


def test_regression_does_not_import_torch(tmp_path):
    assert heavy_imports("regression", "-q", "--out", str(tmp_path)) == ["matplotlib"]


def test_schema_and_report_import_neither_torch_nor_matplotlib_to_check_a_file(tmp_path):
    assert heavy_imports("schema", "conv") == []


def test_the_results_schema_library_loads_only_when_a_file_is_read():
    code = ("import sys, biaslab.results, biaslab.results.schema, biaslab.outputs\n"
            "print('pydantic' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
