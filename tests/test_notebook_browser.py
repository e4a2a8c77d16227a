"""``biaslab.explore.widget`` in a real JupyterLab, in headless Chromium.

The test starts its own JupyterLab on a free localhost port with a temporary root and
configuration, opens a notebook that builds ``widget(conv_layer, image)`` from a user's
``nn.Conv2d``, moves the bias slider in the page, and checks that

- the active share the widget shows is the one ``biaslab conv`` computes (``run_conv`` with the
  channel's kernel saved as a file, the same image and the slider's bias);
- ``w.bias`` in the kernel is the slider's value, and the layer's own bias moved with it.

Skipped, with the reason, without Chromium, Playwright or JupyterLab. Set
BIASLAB_SCREENSHOTS=DIR to keep the screenshot.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

TOKEN = "biaslab-test-token"
MAX_SIZE = 96  # the image side: small, so the sums travel fast

SETUP = f"""\
import json, torch, numpy as np
from biaslab.explore import widget
from biaslab.experiments.conv.run import prepare_image
torch.manual_seed(0)
conv_layer = torch.nn.Conv2d(1, 3, kernel_size=3, padding=1)
image, _, _ = prepare_image("camera", None, False, {MAX_SIZE})
np.save("image.npy", image)
w = widget(conv_layer, image)
w"""

READBACK = """\
json.dump({"bias": list(w.bias), "layer_bias": conv_layer.bias.tolist(), "share": w.active_share(1)},
          open("readback.json", "w"))
print("BIAS", w.bias)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(READBACK)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server of this Python, on a free port, rooted in a temporary directory."""
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (extra 'test')")
    pytest.importorskip("anywidget", reason="anywidget is not installed (extra 'notebook')")
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("jupyter-home")
    _notebook(root / "widget.ipynb")
    port = _free_port()
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_DATA_DIR": str(home / "data"), "IPYTHONDIR": str(home / "ipython"),
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.open_browser=False", "--ServerApp.terminals_enabled=False", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):  # until the server answers (a cold start can take a while on a busy machine)
        if proc.poll() is not None:
            break
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    if proc.poll() is not None:
        pytest.fail(f"JupyterLab did not start:\n{(home / 'lab.log').read_text()[-3000:]}")
    yield {"url": url, "root": root, "log": home / "lab.log"}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _run_cell(page, index: int) -> None:
    page.evaluate(
        """async (index) => {
            const app = window.jupyterapp, panel = app.shell.currentWidget;
            await panel.sessionContext.ready;
            panel.content.activeCellIndex = index;
            await app.commands.execute("notebook:run-cell");
        }""",
        index,
    )


def test_widget_moves_a_users_layer_bias_in_jupyterlab(lab, browser, tmp_path):
    from biaslab.experiments.conv.run import run_conv

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, external = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith(lab["url"]) and
            not r.url.startswith(("data:", "blob:")) else None)
    page.goto(f"{lab['url']}/lab/tree/widget.ipynb?token={TOKEN}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext", timeout=120_000)
    _run_cell(page, 0)
    # the widget's host element carries data-ready once explore.js has drawn its panels
    page.wait_for_selector("[data-ready=true]", timeout=120_000, state="attached")
    share = page.locator("#conv-active-fraction")
    kernel = page.locator("#conv-kernel")
    kernel.select_option("channel 1")
    slider = page.locator("#conv-bias")
    slider.fill("0.25")  # a real input event on the range, as a drag fires
    page.wait_for_function(
        "() => { const h = document.querySelector('[data-ready=true]'); "
        "return h && h.shadowRoot.getElementById('conv-bias-value').textContent.includes('0.25'); }", timeout=20_000)
    count = int(share.get_attribute("data-count"))
    shown = share.inner_text().strip()
    assert page.locator("#conv").is_visible() and not page.locator("#regression").is_visible()

    # w.bias, back in Python: the kernel writes what it holds
    readback = Path(lab["root"]) / "readback.json"
    deadline = time.monotonic() + 60
    while True:
        _run_cell(page, 1)
        for _ in range(100):
            if readback.is_file():
                break
            time.sleep(0.2)
        got = json.loads(readback.read_text())
        if got["bias"][1] == 0.25 or time.monotonic() > deadline:
            break
        readback.unlink()
    if os.environ.get("BIASLAB_SCREENSHOTS"):
        out = Path(os.environ["BIASLAB_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / "notebook_widget.png"), full_page=False)
        page.locator("[data-ready=true] >> #conv").screenshot(path=str(out / "notebook_widget_conv.png"))
    page.close()
    assert errors == [], errors
    assert external == []  # offline: nothing beyond the local server
    assert got["bias"][1] == 0.25
    assert got["layer_bias"][1] == pytest.approx(0.25)  # the layer itself moved (float32)
    assert [got["bias"][i] for i in (0, 2)] == pytest.approx([got["layer_bias"][i] for i in (0, 2)])

    # what biaslab conv computes for the same kernel, bias and image
    import torch

    torch.manual_seed(0)
    layer = torch.nn.Conv2d(1, 3, kernel_size=3, padding=1)
    kernel_file = tmp_path / "channel1.npy"
    np.save(kernel_file, layer.weight.detach().double().numpy()[1])
    res = run_conv(builtin="camera", max_size=MAX_SIZE, kernel_file=kernel_file, biases=[0.25], padding=1,
                   check_torch=False)
    expected = res.kernels[0].biases[0].fraction_active
    units = res.output_shape[0] * res.output_shape[1]
    assert count == round(expected * units)
    assert shown == f"{100 * expected:.1f}%"
    assert got["share"] == expected


def _mount(page, w) -> None:
    """Mount widget ``w`` in a blank page the way anywidget does: its ES module's render({model, el})."""
    page.set_content("<!doctype html><html><body><div id='host'></div></body></html>")
    page.evaluate(
        """async ({ esm, state }) => {
            const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
            const mod = await import(url);
            const listeners = {};
            window.saved = [];
            window.model = {
                state,
                get: (k) => state[k],
                set: (k, v) => { state[k] = v; },
                save_changes: () => window.saved.push(state.bias.slice()),
                on: (e, f) => { (listeners[e] = listeners[e] || []).push(f); },
                off: () => {},
                emit: (e) => (listeners[e] || []).forEach((f) => f()),
            };
            mod.default.render({ model: window.model, el: document.getElementById("host") });
        }""",
        {"esm": w._esm, "state": {"_page_html": w._page_html, "_page_css": w._page_css, "_data": w._data,
                                  "panels": w.panels, "bias": list(w.bias)}},
    )
    page.wait_for_selector("#host[data-ready=true]", state="attached", timeout=20_000)


def test_widget_front_end_counts_a_strided_colour_layer_as_the_library(browser):
    """The widget's script alone, in a blank page: a 3-channel, stride-2, unpadded layer."""
    pytest.importorskip("anywidget", reason="anywidget is not installed (extra 'notebook')")
    import torch

    from biaslab.explore import widget
    from biaslab.math.conv import fraction_active

    torch.manual_seed(3)
    layer = torch.nn.Conv2d(3, 2, kernel_size=(3, 5), stride=2, padding=0)
    w = widget(layer, "astronaut", max_size=64)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _mount(page, w)
    share = page.locator("#conv-active-fraction")
    units = w._sums[0].size
    page.locator("#conv-kernel").select_option("channel 1")
    assert page.locator("#conv-bias-value").inner_text() == f"{w.bias[1]:.4g}".replace("-", "−")
    for value in ("-0.3", "0", "0.12"):
        page.locator("#conv-bias").fill(value)
        assert int(share.get_attribute("data-count")) == round(fraction_active(w._sums[1], float(value)) * units)
    assert page.evaluate("window.saved.at(-1)") == [w.bias[0], 0.12]  # channel 0 untouched
    # Python sets the biases: the page follows
    page.evaluate("() => { window.model.state.bias = [0.2, -0.4]; window.model.emit('change:bias'); }")
    assert page.locator("#conv-bias").input_value() == "-0.4"
    assert int(share.get_attribute("data-count")) == round(fraction_active(w._sums[1], -0.4) * units)
    # the explanation reads the layer's own geometry: output (r, c) starts at input (2r, 2c)
    explain = page.locator("#conv-explain")
    row, col = int(explain.get_attribute("data-row")), int(explain.get_attribute("data-col"))
    assert float(explain.get_attribute("data-sum")) == w._sums[1][row, col]
    assert "channel 2" in explain.inner_text()  # one grid per input channel
    from biaslab.experiments.conv.run import prepare_image

    picture = prepare_image("astronaut", None, True, 64)[0].astype(np.float32)
    for ch in range(3):
        patch = explain.locator("table").nth(3 * ch).locator("td").all_inner_texts()
        expected = picture[ch, 2 * row:2 * row + 3, 2 * col:2 * col + 5]
        assert patch == [f"{float(v):.3f}" for v in expected.ravel()], ch
    page.close()
    assert errors == []
