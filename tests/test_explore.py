"""``biaslab explore`` without a browser: a self-contained page whose embedded data is the library's.

The browser side (sliders, clicks, numbers on screen) is tested in test_explore_browser.py.
"""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

from biaslab.cli import app
from biaslab.explore import EXPLORER_FILE, write_explorer
from biaslab.explore.data import (
    EXPLORE_KERNELS,
    browser_weighted_sum,
    decode_array,
    explore_kernels,
    slider_biases,
)
from biaslab.explore.page import render_page
from biaslab.experiments.conv.run import kernel_sums, prepare_image
from biaslab.math.kernels import named_kernel, random_kernels
from biaslab.experiments.regression.data import make_line_data

runner = CliRunner()
MAX_BYTES = 3 * 1024 * 1024  # issue 14: the file stays ≤ 3 MB


def embedded_data(page: str) -> dict:
    match = re.search(r'<script id="explore-data" type="application/json">(.*?)</script>', page, re.S)
    assert match, "no embedded data"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def default_page(tmp_path_factory):
    """The page of `biaslab explore` with every default (camera, 512 px, 2 random kernels, seed 0)."""
    out = tmp_path_factory.mktemp("explore")
    result = runner.invoke(app, ["explore", "--out", str(out)])
    assert result.exit_code == 0, result.output
    path = out / EXPLORER_FILE
    assert result.stdout.strip() == str(path)  # prints its path
    return path.read_text(encoding="utf-8")


class _Resources(HTMLParser):
    """Every src/href attribute and every tag name of a page."""

    def __init__(self):
        super().__init__()
        self.links, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("src", "href") and value is not None]


def test_page_is_self_contained_and_small(default_page):
    parser = _Resources()
    parser.feed(default_page)
    assert all(link.startswith("#") for link in parser.links), parser.links  # in-page anchors only
    assert "link" not in parser.tags and "iframe" not in parser.tags and "img" not in parser.tags
    assert not re.search(r"https?://|//cdn|import\(|fetch\(|XMLHttpRequest", default_page)
    assert len(default_page.encode("utf-8")) <= MAX_BYTES
    assert "{{" not in default_page  # every template marker was filled


def test_contract_elements_exist(default_page):
    for element_id in ["relu-w", "relu-b", "relu-activation", "relu-threshold", "plane-w1", "plane-w2", "plane-b",
                       "plane-active-fraction", "reg-mse-with", "reg-mse-without", "conv-kernel", "conv-bias",
                       "conv-active-fraction", "conv-map", "conv-explain"]:
        assert f'id="{element_id}"' in default_page, element_id
    for range_id in ["relu-w", "relu-b", "plane-w1", "plane-w2", "plane-b", "conv-bias"]:
        assert re.search(rf'<input type="range" id="{range_id}"', default_page), range_id
        assert f'<label for="{range_id}">' in default_page  # a visible label
        assert f'<output id="{range_id}-value" for="{range_id}">' in default_page  # a visible value


def test_conv_bias_slider_is_the_one_the_corrections_cover(default_page):
    """data.py ships corrections for every position of the slider; the slider must be that slider."""
    slider = re.search(r'<input type="range" id="conv-bias" min="([^"]+)" max="([^"]+)" step="([^"]+)"',
                       default_page)
    lo, hi, step = (float(v) for v in slider.groups())
    expected = np.round(np.arange(lo, hi + step / 2, step), 2)
    assert np.array_equal(slider_biases(), expected)
    assert embedded_data(default_page)["conv"]["bias_slider"] == {"min": lo, "max": hi, "step": step}


def test_embedded_image_and_kernels_are_the_library_s(default_page):
    data = embedded_data(default_page)["conv"]
    picture, source, size = prepare_image("camera", None, False, 512)  # biaslab conv's default input
    assert (data["source"], data["original_size"]) == (source, list(size))
    spec = data["image"]
    image = decode_array(spec) / spec["scale"]
    assert spec["dtype"] == "uint8"
    assert np.array_equal(image, picture[0])  # bit for bit: camera is k/255
    names = [k["name"] for k in data["kernels"]]
    assert names == [*EXPLORE_KERNELS, "random-1", "random-2"]
    drawn = random_kernels(2, 1, 3, np.random.default_rng(0))  # as `biaslab conv --random 2 --seed 0`
    expected = [named_kernel(n, 1)[0] for n in EXPLORE_KERNELS] + [k[0] for k in drawn]
    for k, weights in zip(data["kernels"], expected):
        assert np.array_equal(np.array(k["weights"]), weights), k["name"]


def page_sums(data: dict) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """For each kernel, what the page computes: (weights, its own sum with the shipped library values, how many)."""
    spec = data["image"]
    h, w = spec["shape"]
    image = decode_array(spec) / spec["scale"]
    out = []
    for k in data["kernels"]:
        weights = np.array(k["weights"])
        z = browser_weighted_sum(image, weights).ravel()
        fix = decode_array(k["fix_index"])
        z[fix] = decode_array(k["fix_value"])
        out.append((weights, z.reshape(h, w), len(fix)))
    return out


def test_page_active_share_equals_the_library_s_at_every_slider_position(default_page):
    """The rule is the library's (Σ > −b, ties inactive), and the count is exact, for every kernel and b."""
    data = embedded_data(default_page)["conv"]
    picture, _, _ = prepare_image("camera", None, False, 512)
    biases = slider_biases()
    corrected = 0
    for (name, weights), (shipped, z, fixed) in zip(explore_kernels(2, 0), page_sums(data)):
        assert np.array_equal(shipped, weights)
        library = kernel_sums(picture, weights[None])
        np.testing.assert_allclose(z, library, rtol=0, atol=1e-12)
        page_counts = [int(np.count_nonzero(z > -b)) for b in biases]
        library_counts = [int(np.count_nonzero(library > -b)) for b in biases]  # fraction_active's rule
        assert page_counts == library_counts, name
        corrected += fixed
    assert corrected > 0  # on camera the page's own sums do disagree somewhere: the corrections matter


def test_page_sum_without_corrections_would_disagree():
    """Why the corrections exist: summing in another order flips units that sit exactly on a threshold."""
    picture, _, _ = prepare_image("camera", None, False, 512)
    kernel = named_kernel("sobel-y", 1)
    library = kernel_sums(picture, kernel)
    page = browser_weighted_sum(picture[0], kernel[0])
    flips = sum(np.count_nonzero((page > -b) != (library > -b)) for b in slider_biases())
    assert flips > 0


def test_user_image_that_is_not_k_over_255_is_shipped_as_float32(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(3).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "pic.png")
    path = write_explorer(tmp_path / "out", image=tmp_path / "pic.png", random=1, seed=5)
    data = embedded_data(path.read_text(encoding="utf-8"))["conv"]
    picture, _, _ = prepare_image(None, tmp_path / "pic.png", False, 512)
    assert data["image"]["dtype"] == "float32"  # grey = luma of RGB: not k/255
    np.testing.assert_allclose(decode_array(data["image"]), picture[0], rtol=1e-7)
    drawn = random_kernels(1, 1, 3, np.random.default_rng(5))[0][0]
    assert np.array_equal(np.array(data["kernels"][-1]["weights"]), drawn)
    for weights, z, _ in page_sums(data):
        library = kernel_sums(picture, weights[None])
        assert [np.count_nonzero(z > -b) for b in slider_biases()] == [
            np.count_nonzero(library > -b) for b in slider_biases()]


@pytest.mark.parametrize("slope, intercept, noise", [(3.0, 2.0, 2.0), (-1.3, 0.7, 0.1), (0.5, -4.2, 3.3), (0.0, 0.0, 0.0)])
def test_regression_data_rebuilds_the_library_s_data_bit_for_bit(default_page, slope, intercept, noise):
    """The page's y = slope·x + intercept + noise·ε is make_line_data's y, in the same order of operations."""
    data = embedded_data(default_page)["regression"]
    x, unit = np.array(data["x"]), np.array(data["unit_noise"])
    X, y = make_line_data(slope=slope, intercept=intercept, noise=noise, seed=42)
    assert np.array_equal(X[:, 0], x)
    assert np.array_equal(slope * x + intercept + noise * unit, y[:, 0])


def test_data_cannot_close_its_script_element():
    data = {"biaslab_version": "x", "seed": 0, "conv": {"source": "</script><script>alert(1)</script>"}}
    page = render_page(data)
    assert page.count("</script>") == 2  # the data's and the code's own
    start = page.index('<script id="explore-data" type="application/json">') + len(
        '<script id="explore-data" type="application/json">')
    assert json.loads(page[start:page.index("</script>", start)]) == data


def test_bad_image_exits_2_with_one_line(tmp_path):
    result = runner.invoke(app, ["explore", "--image", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("biaslab: error: image ")
    assert not (tmp_path / "o" / EXPLORER_FILE).exists()
    (tmp_path / "junk.png").write_bytes(b"not an image")
    result = runner.invoke(app, ["explore", "--image", str(tmp_path / "junk.png"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "cannot read image" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--random", "-1"], "--random must be between 0 and 11"),
    (["--random", "12"], "--random must be between 0 and 11"),
    (["--builtin", "nope"], "unknown built-in image 'nope'"),
    (["--max-size", "0"], "--max-size must be ≥ 1"),
])
def test_bad_options_exit_2(tmp_path, args, message):
    result = runner.invoke(app, ["explore", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_json_and_quiet(tmp_path):
    result = runner.invoke(app, ["explore", "--builtin", "coins", "--max-size", "64", "--random", "0", "--json",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    path = tmp_path / EXPLORER_FILE
    assert info == {"explorer": str(path), "bytes": path.stat().st_size}
    data = embedded_data(path.read_text(encoding="utf-8"))["conv"]
    assert data["source"] == "coins" and max(data["image"]["shape"]) <= 64
    assert [k["name"] for k in data["kernels"]] == list(EXPLORE_KERNELS)
    quiet = runner.invoke(app, ["explore", "--builtin", "coins", "--max-size", "64", "--quiet", "--out", str(tmp_path)])
    assert quiet.exit_code == 0 and quiet.stdout == ""


# --- --from DIR: a panel for a saved denoise or ablate run -------------------------------------

def fake_denoise():
    """The fields of a DenoiseResult that the panel reads (a run is minutes of training)."""
    from types import SimpleNamespace

    from biaslab.results import Claim

    return SimpleNamespace(
        command="denoise", sigmas=[0.0, 5.0, 10.0, 25.0, 50.0, 100.0],
        psnr={"noisy": [float("inf"), 34.2, 28.1, 20.2, 14.2, 8.1], "with_bias": [40.0, 36.0, 33.0, 25.0, 17.0, 9.5],
              "bias_free": [39.5, 35.9, 33.1, 28.0, 24.0, 18.25]},
        gain_db=[-0.5, -0.1, 0.1, 3.0, 7.0, 8.75], train_sigma_max=10.0,
        claims=[Claim("bias_free_generalises", "bias-free is ahead by 8.75 dB at σ = 100.", True, {"gain": 8.75})],
    )


def fake_ablate():
    from types import SimpleNamespace

    from biaslab.results import Claim

    def band(mean, half):
        mean = np.array(mean)
        return SimpleNamespace(mean=mean, low=mean - half, high=mean + half, kind="ci", confidence=0.95)

    variants = {
        "with-bias": SimpleNamespace(shift_bands={"brightness": band([0.98, 0.95, 0.9], 0.01),
                                                  "contrast": band([0.98, 0.9, 0.6], 0.02)}),
        "no-bias": SimpleNamespace(shift_bands={"brightness": band([0.97, 0.7, 0.4], 0.03),
                                                "contrast": band([0.97, 0.92, 0.7], 0.02)}),
    }
    cfg = SimpleNamespace(name="cnn/digits", seeds=[0, 1, 2], variants=variants,
                          shift_levels={"brightness": [0.0, 1.0, 2.0], "contrast": [1.0, 0.5, 0.1]})
    claims = [Claim("cnn/digits/no-bias/brightness", "under brightness +2 the biases help.", True, {}),
              Claim.of("cnn/digits/no-bias/contrast", "inconclusive", "under contrast ×0.1 no significant difference.", {}),
              Claim.of("cnn/digits/no-bias", "inconclusive", "on clean data no significant difference.", {})]
    return SimpleNamespace(command="ablate", configurations=[cfg], claims=claims)


def test_denoise_panel_carries_the_stored_numbers():
    from biaslab.explore.runs import denoise_panel

    panel = denoise_panel(fake_denoise())
    assert panel["sigmas"] == [0.0, 5.0, 10.0, 25.0, 50.0, 100.0] and panel["train_sigma_max"] == 10.0
    assert panel["psnr"]["bias_free"][-1] == 18.25 and panel["gain_db"][-1] == 8.75
    assert panel["psnr"]["noisy"][0] is None  # ∞ dB (no noise) has no JSON number: shown as n/a
    assert [c["id"] for c in panel["claims"]] == ["bias_free_generalises"]
    json.dumps(panel, allow_nan=False)


def test_ablate_panel_keeps_each_shift_s_own_claims():
    from biaslab.explore.runs import ablate_panel

    panel = ablate_panel(fake_ablate())
    (cfg,) = panel["configurations"]
    assert cfg["name"] == "cnn/digits" and cfg["seeds"] == 3 and list(cfg["shifts"]) == ["brightness", "contrast"]
    bright = cfg["shifts"]["brightness"]
    assert bright["levels"] == [0.0, 1.0, 2.0]
    assert bright["variants"]["no-bias"]["mean"] == pytest.approx([0.97, 0.7, 0.4])
    assert bright["variants"]["no-bias"]["band"] == "ci"
    assert [c["id"] for c in bright["claims"]] == ["cnn/digits/no-bias/brightness"]
    # each claim carries its verdict: measured but undecided is shown as such, not as "does not hold"
    assert [c["verdict"] for c in cfg["shifts"]["contrast"]["claims"]] == ["inconclusive"]


def test_ablate_panel_orders_levels_from_no_shift_to_the_strongest():
    from biaslab.explore.runs import ablate_panel

    fake = fake_ablate()
    cfg = fake.configurations[0]
    cfg.shift_levels = {"brightness": [0.0, 2.0, 1.0], "contrast": [1.0, 0.1, 0.5]}  # given in any order
    panel = ablate_panel(fake)
    shifts = panel["configurations"][0]["shifts"]
    assert shifts["contrast"]["levels"] == [1.0, 0.5, 0.1] and shifts["brightness"]["levels"] == [0.0, 1.0, 2.0]
    # the bands move with their levels
    assert shifts["contrast"]["variants"]["with-bias"]["mean"] == pytest.approx([0.98, 0.6, 0.9])


def test_from_a_directory_of_another_command_exits_2(tmp_path):
    run = runner.invoke(app, ["regression", "--quiet", "--out", str(tmp_path / "reg")])
    assert run.exit_code == 0, run.output
    result = runner.invoke(app, ["explore", "--from", str(tmp_path / "reg"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "holds a biaslab regression run" in result.stderr
    result = runner.invoke(app, ["explore", "--from", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_open_opens_the_page_in_the_browser(tmp_path, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    result = runner.invoke(app, ["explore", "--builtin", "coins", "--max-size", "32", "--random", "0", "--open",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert opened == [(tmp_path / EXPLORER_FILE).resolve().as_uri()]


def test_explore_imports_neither_torch_nor_matplotlib(tmp_path):
    """The page is NumPy work: `biaslab explore` starts as fast as `biaslab regression`."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from biaslab.cli import app\n"
        f"try:\n    app(['explore', '--quiet', '--max-size', '32', '--out', {str(tmp_path)!r}])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
