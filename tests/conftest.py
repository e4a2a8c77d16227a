import os
import shutil
from pathlib import Path

import pytest

# torch's OpenMP threads spin-wait by default; on a shared 2-core machine that slows every
# test badly. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Floating-point sums depend on how many threads split them, so trained accuracies can differ in
# the last test image between machines. The suite runs on one thread everywhere (set before torch
# or a BLAS loads, for this process and the subprocesses it starts); tests that compare numbers
# across runs also state their tolerance, so they hold on any thread count.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"


#: The browser tests drive Debian's Chromium (``apt-get install chromium``); as root, headless, with the
#: background networking this machine's closed network refuses turned off.
CHROMIUM = os.environ.get("BIASLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright, one per test module; skips without either."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set BIASLAB_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
