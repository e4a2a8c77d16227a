"""biaslab in a notebook, without a browser: results that show themselves, figures by name,
top-level names, progress in a kernel, and the Python side of the explorer widget."""

import json
import subprocess
import sys
import types

import numpy as np
import pytest

import biaslab
from biaslab.infra.io import BiaslabError
from biaslab.results import RESULT_TYPES, Claim, Result, load_results, result_type


@pytest.fixture(scope="module")
def regression():
    from biaslab.experiments.regression.run import run_regression

    return run_regression()


@pytest.fixture(scope="module")
def conv():
    from biaslab.experiments.conv.run import run_conv

    return run_conv(builtin="camera", max_size=32, kernels=["sobel-x", "laplacian"], biases=[0.0, 0.2],
                    check_torch=False)


def test_every_result_class_shows_itself_through_the_base_class():
    for command in RESULT_TYPES:
        cls = result_type(command)
        assert cls._repr_html_ is Result._repr_html_, command  # one implementation: a new command gets it too
        assert cls.figure is Result.figure


def test_regression_html_has_claims_verdicts_numbers_and_the_key_figure(regression):
    from biaslab.infra.numfmt import fmt_num

    html = regression._repr_html_()
    for claim in regression.claims:
        assert claim.statement.replace("<", "&lt;") in html
    assert html.count("<span class='holds'>holds</span>") == sum(c.holds is True for c in regression.claims)
    assert fmt_num(regression.without_bias.mse) in html and fmt_num(regression.with_bias.mse) in html
    assert html.count('src="data:image/png;base64,') == 1  # the key figure, inline
    assert "biaslab regression" in html


def test_html_shows_the_claims_own_verdict_when_it_has_one(regression):
    from biaslab.render.notebook import verdict_of

    def verdicted(claim, verdict):  # a claim as the three-verdict claims will be
        return types.SimpleNamespace(id=claim.id, text=claim.text, holds=claim.holds, evidence=claim.evidence,
                                     statement=claim.statement, verdict=verdict)

    claims = [verdicted(regression.claims[0], "inconclusive"), verdicted(regression.claims[1], "refuted")]
    assert [verdict_of(c) for c in claims] == ["inconclusive", "refuted"]
    assert verdict_of(Claim("x", "t", None)) == "not measured"
    res = type(regression)(**{**vars(regression), "claims": claims})
    html = res._repr_html_()
    assert "<span class='unknown'>inconclusive</span>" in html and "<span class='fails'>refuted</span>" in html


def test_figure_returns_the_renderers_matplotlib_figure_and_names_the_choices(conv, regression):
    from matplotlib.figure import Figure

    names = conv.figure_names()
    assert names == ["conv_maps_1_sobel-x", "conv_maps_2_laplacian", "conv_activity"]
    fig = conv.figure("conv_activity")
    assert isinstance(fig, Figure) and fig.axes[0].get_title()
    with pytest.raises(BiaslabError, match="no figure 'nope'; its figures: 'regression'"):
        regression.figure("nope")


def test_a_saved_run_loads_and_shows_the_same(regression, tmp_path):
    from biaslab.outputs import save_outputs

    save_outputs(regression, tmp_path)
    loaded = load_results(tmp_path)
    assert loaded._repr_html_() == regression._repr_html_()


def test_relu_shows_itself():
    from biaslab.experiments.relu.run import run_relu

    relu = run_relu()
    html = relu._repr_html_()
    assert "biaslab relu" in html and html.count("<tr>") >= len(relu.claims) + 1
    assert relu.figure_names() == ["relu_threshold", "relu_plane"]


def test_top_level_names_are_lazy_and_do_not_import_torch():
    code = ("import sys, biaslab; before = 'torch' in sys.modules; f = biaslab.run_regression; "
            "after = 'torch' in sys.modules; print(before, after, f.__module__, biaslab.load_results.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "biaslab.experiments.regression.run", "biaslab.results"]
    for name in biaslab._LAZY:
        assert callable(getattr(biaslab, name)), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        biaslab.nope  # noqa: B018


def test_progress_detects_a_jupyter_kernel(monkeypatch):
    from biaslab.infra import progress

    assert not progress.in_jupyter()
    ZMQInteractiveShell = type("ZMQInteractiveShell", (), {})
    TerminalInteractiveShell = type("TerminalInteractiveShell", (), {})
    fake = types.ModuleType("IPython")
    fake.get_ipython = ZMQInteractiveShell
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress.in_jupyter()
    fake.get_ipython = TerminalInteractiveShell  # plain IPython in a terminal: not a notebook
    assert not progress.in_jupyter()


# ---------- the widget, Python side ----------

try:  # the widget's tests need the notebook extra; the rest of this file does not
    import anywidget  # noqa: F401
    import torch
except ImportError:  # pragma: no cover - the test extras bring both
    torch = None
needs_widget = pytest.mark.skipif(torch is None, reason="anywidget or torch is not installed (extra 'notebook')")


@pytest.fixture()
def layer():
    torch.manual_seed(0)
    return torch.nn.Conv2d(1, 3, kernel_size=3, padding=1)


@needs_widget
def test_widget_runs_the_pages_own_script(layer):
    from biaslab.explore import widget
    from biaslab.explore.page import static_text

    w = widget(layer, "camera", max_size=32)
    assert static_text("explore.js") in w._esm  # the same source, read at run time: no second copy
    assert static_text("widget.js") in w._esm
    assert "<section id=\"conv\"" in w._page_html and "http" not in w._esm.replace("https://", "")
    assert w.panels == ["conv"]


@needs_widget
def test_widget_layer_sums_are_what_biaslab_conv_counts(layer, tmp_path):
    from biaslab.experiments.conv.run import kernel_sums, prepare_image, run_conv
    from biaslab.explore.data import decode_array
    from biaslab.explore.notebook import layer_panel

    panel, sums = layer_panel(layer, "camera", max_size=32)
    picture = prepare_image("camera", None, False, 32)[0]
    weights = layer.weight.detach().double().numpy()
    for c, k in enumerate(panel["kernels"]):
        np.testing.assert_array_equal(decode_array(k["sums"]), kernel_sums(picture, weights[c], 1, (1, 1)))
        assert k["bias"] == float(layer.bias.detach()[c])
    slider = panel["bias_slider"]
    reach = max(float(np.abs(s).max()) for s in sums)
    assert slider["min"] <= -reach and slider["max"] >= reach  # every unit can be switched on and off
    # the share the widget reports is biaslab conv's for the same kernel, bias and image
    from biaslab.explore import widget

    w = widget(layer, "camera", max_size=32)
    w.bias = [0.05, -0.1, 0.3]
    np.save(tmp_path / "k.npy", weights[2])
    res = run_conv(builtin="camera", max_size=32, kernel_file=tmp_path / "k.npy", biases=[0.3], padding=1,
                   check_torch=False)
    assert w.active_share(2) == res.kernels[0].biases[0].fraction_active


@needs_widget
def test_widget_writes_the_bias_into_the_layer_and_resets(layer):
    from biaslab.explore import widget

    before = layer.bias.detach().clone()
    w = widget(layer, np.random.default_rng(0).random((20, 24)))
    assert w.bias == pytest.approx(before.tolist())
    w.bias = [0.5, -0.25, 0.0]
    assert layer.bias.tolist() == [0.5, -0.25, 0.0]
    w.reset()
    assert torch.equal(layer.bias.detach(), before)
    assert w._data["conv"]["map_shape"] == [20, 24]


@needs_widget
def test_widget_follows_the_layers_stride_and_padding():
    from biaslab.explore import widget

    torch.manual_seed(1)
    layer = torch.nn.Conv2d(3, 2, kernel_size=(3, 5), stride=2, padding=0)
    image = torch.rand(1, 3, 17, 21)
    w = widget(layer, image)
    out = layer(image)  # torch's own output shape
    assert w._data["conv"]["map_shape"] == list(out.shape[2:])
    assert w._data["conv"]["geometry"] == {"stride": [2, 2], "pad_before": [0, 0]}
    z = (out[0] - layer.bias[:, None, None]).detach().double().numpy()  # Σ without the bias, float32 from torch
    from biaslab.explore.data import decode_array

    for c in range(2):
        np.testing.assert_allclose(decode_array(w._data["conv"]["kernels"][c]["sums"]), z[c], atol=1e-5)


@needs_widget
@pytest.mark.parametrize("make, image, match", [
    (lambda: torch.nn.Conv2d(1, 2, 3, bias=False), "camera", "has no bias"),
    (lambda: torch.nn.Conv2d(1, 2, 3, dilation=2), "camera", "dilation 1, groups 1"),
    (lambda: torch.nn.Linear(3, 2), "camera", "needs a torch.nn.Conv2d"),
    (lambda: torch.nn.Conv2d(2, 2, 3), np.zeros((3, 8, 8)), r"shape \(H, W\), \(2, H, W\)"),
    (lambda: torch.nn.Conv2d(1, 2, 3), np.full((8, 8), np.nan), "NaN or infinite"),
    (lambda: torch.nn.Conv2d(1, 2, 3), "not-a-picture", "not-a-picture"),
])
def test_widget_refuses_what_it_cannot_show_in_one_line(make, image, match):
    from biaslab.explore import widget

    with pytest.raises(BiaslabError, match=match):
        widget(make(), image)


@needs_widget
def test_widget_without_a_layer_shows_the_pages_panels():
    from biaslab.explore import widget

    with pytest.raises(BiaslabError, match="unknown panel"):
        widget(panels=["nope"])
    with pytest.raises(BiaslabError, match="both a Conv2d layer and an image"):
        widget(torch.nn.Conv2d(1, 1, 3))
    w = widget(panels=["activation", "plane"], max_size=64)
    assert w.panels == ["activation", "plane"] and w.bias == []
    json.dumps(w._data, allow_nan=False)  # what travels to the browser is plain JSON


def test_the_demo_shows_its_claims_then_each_part(regression):
    from biaslab.results.demo import DemoResult

    demo = DemoResult(sections=["regression"], claims=list(regression.claims), params={"seed": 42},
                      parts={"regression": regression})
    html = demo._repr_html_()
    assert html.index("biaslab demo") < html.index("biaslab regression")
    assert html.count('src="data:image/png;base64,') == 1
    with pytest.raises(BiaslabError, match="its figures: none"):
        demo.figure("regression")


def test_progress_defaults_to_a_bar_in_jupyter_only(monkeypatch, capsys):
    from biaslab.infra import progress

    with progress.progress_bar(2, "quiet outside Jupyter", None) as advance:
        advance()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    monkeypatch.setattr(progress, "in_jupyter", lambda: False)
    with progress.progress_bar(2, "lines when asked", True) as advance:
        advance(2)
    assert "biaslab: lines when asked" in capsys.readouterr().err
