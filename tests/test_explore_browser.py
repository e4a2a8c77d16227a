"""``biaslab explore`` in a real browser: every slider gives the library's numbers.

Headless Chromium from the Debian package ``chromium`` (``.ci/run`` installs it), driven by
Playwright; one browser for the module. Skipped, with the reason, where either is missing.
Set BIASLAB_SCREENSHOTS=DIR to keep the desktop and phone screenshots.
"""

import os
import re
from pathlib import Path

import numpy as np
import pytest

from biaslab.math.activations import activate, threshold
from biaslab.math.conv import explain_pixel
from biaslab.explore import write_explorer
from biaslab.explore.data import explore_kernels
from biaslab.experiments.conv.run import kernel_sums, prepare_image
from biaslab.experiments.regression.data import make_line_data
from biaslab.experiments.regression.run import run_regression
from biaslab.math.least_squares import fit_linear, mse
from biaslab.infra.numfmt import fmt_fixed, fmt_num, fmt_signed



@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    """The default page: camera at 512 px (as biaslab conv), the bank and 2 random kernels, seed 0."""
    return write_explorer(tmp_path_factory.mktemp("explore"))


@pytest.fixture(scope="module")
def page(browser, page_file):
    """The page loaded from disk; it must make no request beyond its own file and log no error."""
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, errors = [], []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(page_file.as_uri())
    pg.wait_for_selector("body[data-ready=true]", timeout=20000)
    yield pg
    assert errors == []
    assert requests == [page_file.as_uri()]  # offline: nothing but the file itself
    pg.close()


def set_inputs(page, values: dict) -> None:
    """Set each input's value and fire its input event, then let one animation frame pass."""
    page.evaluate(
        """async (values) => {
            for (const [id, value] of Object.entries(values)) {
                const el = document.getElementById(id);
                el.value = String(value);
                el.dispatchEvent(new Event("input", { bubbles: true }));
            }
            await new Promise((resolve) => requestAnimationFrame(resolve));
        }""",
        values,
    )


def text(page, element_id: str) -> str:
    return page.inner_text(f"#{element_id}").strip()


def on_page(report_text: str) -> str:
    """The page's text for a number the reports write as ``report_text``: the minus sign is "−" (U+2212)."""
    return report_text.replace("-", "−")


def number(page_text: str) -> float:
    """The value of a number as the page shows it."""
    return float(page_text.replace("−", "-"))


def percent(page, element_id: str) -> float:
    shown = text(page, element_id)
    assert shown.endswith("%") and len(shown.split(".")[1]) == 2, shown  # percent, 1 decimal
    return float(shown[:-1])


@pytest.fixture(scope="module")
def library_sums():
    picture, _, _ = prepare_image("camera", None, False, 512)
    return picture, {name: kernel_sums(picture, w[None]) for name, w in explore_kernels(2, 0)}


def test_conv_active_share_is_the_library_s_for_every_kernel(page, library_sums):
    _, sums = library_sums
    options = page.eval_on_selector_all("#conv-kernel option", "els => els.map(e => e.value)")
    assert options == ["gaussian", "sobel-x", "sobel-y", "laplacian", "sharpen", "random-1", "random-2"]
    for name in options:
        for b in (-0.5, -0.13, 0.0, 0.07, 0.5):
            set_inputs(page, {"conv-kernel": name, "conv-bias": b})
            library = sums[name] > -b  # fraction_active: active where Σ > −b
            shown = percent(page, "conv-active-fraction")
            assert abs(shown - 100 * library.mean()) <= 0.05 + 1e-9, (name, b)  # the library's, rounded
            assert int(page.get_attribute("#conv-active-fraction", "data-count")) == int(library.sum()), (name, b)


def test_conv_keyboard_moves_the_bias(page, library_sums):
    _, sums = library_sums
    set_inputs(page, {"conv-kernel": "sobel-x", "conv-bias": 0})
    page.focus("#conv-bias")
    page.keyboard.press("ArrowRight")
    assert text(page, "conv-bias-value") == "0.01"
    assert abs(percent(page, "conv-active-fraction") - 100 * (sums["sobel-x"] > -0.01).mean()) <= 0.05 + 1e-9


@pytest.mark.parametrize("kernel, b, pixel", [("sobel-x", -0.1, (100, 200)), ("laplacian", 0.3, (0, 3)),
                                               ("random-2", 0.9, (511, 37))])
def test_clicking_a_pixel_explains_it_as_the_library_does(page, library_sums, kernel, b, pixel):
    picture, _ = library_sums
    weights = dict(explore_kernels(2, 0))[kernel]
    set_inputs(page, {"conv-kernel": kernel, "conv-bias": b})
    page.locator("#conv-map").scroll_into_view_if_needed()
    box = page.evaluate("""() => { const c = document.getElementById("conv-map"), r = c.getBoundingClientRect();
        return { x: r.left + c.clientLeft, y: r.top + c.clientTop, width: c.clientWidth, height: c.clientHeight }; }""")
    page.mouse.click(box["x"] + (pixel[1] + 0.5) / 512 * box["width"], box["y"] + (pixel[0] + 0.5) / 512 * box["height"])
    explain = page.locator("#conv-explain")
    row, col = int(explain.get_attribute("data-row")), int(explain.get_attribute("data-col"))
    assert abs(row - pixel[0]) <= 1 and abs(col - pixel[1]) <= 1  # a map pixel is < 1 CSS pixel: clicks round
    assert f"Output ({row}, {col})" in explain.inner_text()
    e = explain_pixel(picture, weights[None], (row, col), b, "relu", padding="same")
    grids = page.eval_on_selector_all(
        "#conv-explain table", "ts => ts.map(t => Array.from(t.rows, r => Array.from(r.cells, c => c.textContent)))")
    for cells, expected in zip(grids, (e.patch[0], e.kernel[0], e.product[0])):
        assert np.vectorize(number)(cells) == pytest.approx(expected, abs=5e-4 + 1e-12)
    assert len(grids) == 3
    assert number(page.inner_text("#conv-explain .sum")) == pytest.approx(e.total, rel=1e-5, abs=1e-9)
    assert number(page.inner_text("#conv-explain .pre")) == pytest.approx(e.pre_activation, rel=1e-3, abs=1e-9)
    assert number(page.inner_text("#conv-explain .output")) == pytest.approx(e.output, rel=1e-3, abs=1e-9)
    assert float(explain.get_attribute("data-output")) == pytest.approx(e.output, rel=1e-12, abs=1e-12)
    assert ("on" if e.output > 0 else "off") == page.inner_text("#conv-explain .on, #conv-explain .off")


def test_keys_move_the_explained_pixel_into_the_zero_padding(page):
    set_inputs(page, {"conv-kernel": "gaussian", "conv-bias": 0})
    page.focus("#conv-map")
    for key in ["Shift+ArrowUp"] * 60 + ["Shift+ArrowLeft"] * 60 + ["ArrowDown"]:
        page.keyboard.press(key)
    explain = page.locator("#conv-explain")
    assert (explain.get_attribute("data-row"), explain.get_attribute("data-col")) == ("1", "0")
    assert page.locator("#conv-explain td.pad").count() == 3 * 3  # the left column, in each of the 3 grids


@pytest.mark.parametrize("intercept, slope, noise", [(2.0, 3.0, 2.0), (-1.5, 0.7, 0.4), (5.0, -5.0, 5.0),
                                                     (0.0, 2.0, 0.0)])
def test_regression_mse_is_the_library_s(page, intercept, slope, noise):
    set_inputs(page, {"reg-intercept": intercept, "reg-slope": slope, "reg-noise": noise})
    X, y = make_line_data(slope=slope, intercept=intercept, noise=noise, seed=42)
    for fit_intercept, element_id in ((True, "reg-mse-with"), (False, "reg-mse-without")):
        expected = mse(y, fit_linear(X, y, fit_intercept).predict(X))
        assert text(page, element_id) == fmt_fixed(expected, 4), (element_id, expected)
    # the sentence under the sliders agrees with the library's claim on the same data
    holds = run_regression(slope=slope, intercept=intercept, noise=noise).claim("bias_lowers_mse").holds
    verdict = text(page, "reg-verdict")
    assert ("the bias lowers the MSE by" in verdict and "only" not in verdict) == holds, verdict


def test_regression_starts_on_the_classic_numbers(browser, page_file):
    fresh = browser.new_page()
    fresh.goto(page_file.as_uri())
    fresh.wait_for_selector("body[data-ready=true]")
    assert (text(fresh, "reg-mse-without"), text(fresh, "reg-mse-with")) == ("4.4679", "3.3006")  # issue 14
    fresh.click("#reg-redraw")  # the page's own generator: other data, still least squares
    assert text(fresh, "reg-mse-with") != "3.3006" and "own generator" in text(fresh, "reg-source")
    fresh.click("#reg-classic")
    assert text(fresh, "reg-mse-with") == "3.3006"
    fresh.close()


@pytest.mark.parametrize("w, b", [(1.0, 0.0), (2.0, -1.3), (-0.7, 2.1), (0.3, 0.1), (0.0, 1.0)])
def test_relu_threshold_is_minus_b_over_w(page, w, b):
    set_inputs(page, {"relu-w": w, "relu-b": b})
    t = threshold(w, b)
    assert text(page, "relu-threshold") == ("none (w = 0)" if t is None else on_page(fmt_fixed(t, 3)))
    assert text(page, "relu-w-value") == on_page(f"{w:.1f}") and text(page, "relu-b-value") == on_page(fmt_fixed(b, 1))


def test_activation_curves_are_the_library_s(page):
    z = np.linspace(-8, 8, 161)
    for name in ("relu", "leaky_relu", "sigmoid", "tanh", "gelu"):
        set_inputs(page, {"relu-activation": name})
        shown = page.evaluate("([name, z]) => z.map(window.biaslabExplore.activations[name])", [name, z.tolist()])
        # gelu's 1 + erf(z/√2) cancels for z ≪ 0, in SciPy as on the page: a few ulps of 1 apart
        np.testing.assert_allclose(shown, activate(z, name), rtol=1e-12, atol=1e-14, err_msg=name)


def grid_share(w1: float, w2: float, b: float, n: int = 3000) -> float:
    """Share of [−3, 3]² where w1·x1 + w2·x2 + b > 0, on an n × n grid of cell centres."""
    centres = -3 + (np.arange(n) + 0.5) * 6 / n
    return float(np.mean(w1 * centres[:, None] + w2 * centres[None, :] + b > 0))


@pytest.mark.parametrize("w1, w2, b", [(1.0, 1.0, 0.0), (1.0, 0.5, 1.2), (-2.0, 0.3, -2.5), (0.0, 0.0, 1.0),
                                       (0.0, 0.0, 0.0), (0.0, 1.0, -6.0), (2.5, -1.5, 5.5)])
def test_plane_active_share_is_the_area_numpy_measures(page, w1, w2, b):
    set_inputs(page, {"plane-w1": w1, "plane-w2": w2, "plane-b": b})
    assert percent(page, "plane-active-fraction") == pytest.approx(100 * grid_share(w1, w2, b), abs=0.1)


def test_screenshots_desktop_and_phone(browser, page_file, tmp_path):
    """Screenshots at 1280 and 375 px: nothing wider than the phone's screen; kept with BIASLAB_SCREENSHOTS."""
    keep = os.environ.get("BIASLAB_SCREENSHOTS")
    out = Path(keep) if keep else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 375, "height": 800})):
        pg = browser.new_page(viewport=viewport)
        pg.goto(page_file.as_uri())
        pg.wait_for_selector("body[data-ready=true]")
        assert pg.evaluate("document.documentElement.scrollWidth") <= viewport["width"], name  # no sideways scroll
        pg.screenshot(path=str(out / f"explore_{name}.png"), full_page=True)
        assert (out / f"explore_{name}.png").stat().st_size > 50_000
        pg.close()


#: Records, per canvas id, the text drawn (with its position, baseline and font) and the frames stroked.
RECORD_DRAWING = """(() => {
    const P = CanvasRenderingContext2D.prototype, fill = P.fillText, frame = P.strokeRect;
    window.drawn = {};
    const log = (ctx) => (window.drawn[ctx.canvas.id] ||= { texts: [], frames: [] });
    P.fillText = function (text, x, y) {
        log(this).texts.push({ text, x, y, base: this.textBaseline, size: parseFloat(this.font) });
        return fill.apply(this, arguments);
    };
    P.strokeRect = function (x, y, w, h) {
        log(this).frames.push({ x, y, w, h });
        return frame.apply(this, arguments);
    };
})();"""


@pytest.mark.parametrize("width", [375, 1280])
def test_threshold_label_and_residual_legend_stay_above_the_plot_area(browser, page_file, width):
    """The x = −b/w label never crosses the curve and the residual legend covers no point: both are
    drawn above the plot frame, in the band of the y-axis label."""
    pg = browser.new_page(viewport={"width": width, "height": 900})
    pg.add_init_script(RECORD_DRAWING)
    pg.goto(page_file.as_uri())
    pg.wait_for_selector("body[data-ready=true]")
    pg.evaluate("window.drawn = {}")
    set_inputs(pg, {"relu-b": 1, "reg-intercept": 2})
    drawn = pg.evaluate("window.drawn")
    pg.close()

    def above_frame(canvas: str, words: str) -> None:
        top = drawn[canvas]["frames"][-1]["y"]
        texts = [t for t in drawn[canvas]["texts"] if t["text"].startswith(words)]
        assert texts, (canvas, words)
        for t in texts:
            bottom = {"bottom": t["y"], "middle": t["y"] + t["size"] / 2, "top": t["y"] + t["size"]}[t["base"]]
            assert bottom <= top, (canvas, t, top)

    above_frame("relu-plot", "x = −b/w")
    above_frame("reg-residuals", "with bias")
    above_frame("reg-residuals", "without bias")


FORMAT_VALUES = [-1.5, -0.0004, -0.0, 0.0, 2 / 3, -123456.789, 1.5e-5, -2.5e-7, 9.9996, -0.25, 0.1 + 0.2]


def test_page_formats_numbers_as_the_reports_with_a_minus_sign(page):
    """fixed, sig and signed write what fmt_fixed, fmt_num and fmt_signed write, with "−" for "-"."""
    special = [float("inf"), float("-inf"), float("nan")]
    fixed_and_sig = page.evaluate("(xs) => xs.map((x) => [window.biaslabExplore.format.fixed(x, 3), "
                                  "window.biaslabExplore.format.sig(x, 4)])", FORMAT_VALUES + special)
    assert fixed_and_sig == [[on_page(fmt_fixed(x, 3)), on_page(fmt_num(x))] for x in FORMAT_VALUES + special]
    signed = page.evaluate("(xs) => xs.map((x) => window.biaslabExplore.format.signed(x, 2, ' dB'))", FORMAT_VALUES)
    assert signed == [fmt_signed(x, 2, " dB") for x in FORMAT_VALUES]  # fmt_signed already writes "−"
    assert "−0" not in {t for pair in fixed_and_sig for t in pair} | set(signed)


#: A hyphen-minus written as a number's sign ("-3.000", "-.5") or an exponent's ("1e-5"); "random-1" is a name.
HYPHEN_NUMBER = re.compile(r"(?<![\w-])-\.?\d|\de-\d")


@pytest.mark.parametrize("width", [375, 1280])
def test_no_number_on_the_page_is_written_with_a_hyphen(browser, page_file, width):
    """With settings that make every panel show negative numbers, no text and no canvas label signs one with "-".

    Command lines (in <code>) keep the hyphen the shell needs; the data-* attributes are for machines.
    """
    pg = browser.new_page(viewport={"width": width, "height": 900})
    pg.add_init_script(RECORD_DRAWING)
    pg.goto(page_file.as_uri())
    pg.wait_for_selector("body[data-ready=true]")
    set_inputs(pg, {"relu-w": 1, "relu-b": 1.3, "plane-w1": -2, "plane-w2": -1.5, "plane-b": -2.5,
                    "reg-slope": -4.2, "reg-intercept": -1.5, "conv-kernel": "sobel-x", "conv-bias": -0.37})
    pg.focus("#conv-map")
    pg.keyboard.press("ArrowLeft")  # explain the pixel left of the centre at these settings
    shown = pg.evaluate("""() => {
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), texts = [];
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (!node.parentElement.closest("code, script, style")) texts.push(node.textContent);
        }
        const canvases = Object.values(window.drawn).flatMap((d) => d.texts.map((t) => t.text));
        const ids = ["relu-threshold", "plane-boundary", "reg-line-with", "conv-threshold", "conv-explain"];
        return { texts, canvases, command: document.querySelector("#reg-source code").textContent,
                 readouts: Object.fromEntries(ids.map((id) => [id, document.getElementById(id).textContent])) };
    }""")
    pg.close()
    page_text, canvas_text = " ".join(shown["texts"]), " ".join(shown["canvases"])
    assert HYPHEN_NUMBER.findall(page_text) == [] and HYPHEN_NUMBER.findall(canvas_text) == []
    assert "x = −b/w = −1.300" in canvas_text and "−" in canvas_text.replace("x = −b/w", "")  # negative ticks
    readouts = shown["readouts"]
    assert readouts["relu-threshold"] == "−1.300"
    assert readouts["plane-boundary"].startswith("Boundary −2.0·x1 + −1.5·x2 = 2.5,")
    assert readouts["reg-line-with"].startswith("ŷ = −4.") and " − " in readouts["reg-line-with"]
    assert "b = −0.37 a unit fires where Σ(input * kernel) > 0.37; Σ runs from −" in readouts["conv-threshold"]
    assert "−" in readouts["conv-explain"].replace("−b", "")  # sobel-x's negative weights and products
    assert "--slope -4.2 --intercept -1.5" in shown["command"]  # a command to copy keeps the shell's hyphen


@pytest.fixture(scope="module")
def run_pages(tmp_path_factory):
    """Small pages with a saved-run panel: one for a denoise run, one for an ablate run."""
    from biaslab.explore.data import explorer_data
    from biaslab.explore.page import render_page
    from biaslab.explore.runs import ablate_panel, denoise_panel
    from test_explore import fake_ablate, fake_denoise

    out = tmp_path_factory.mktemp("runs")
    base = explorer_data(builtin="coins", max_size=48, random=0)
    pages = {}
    for name, panel in (("denoise", denoise_panel(fake_denoise())), ("ablate", ablate_panel(fake_ablate()))):
        pages[name] = out / f"{name}.html"
        pages[name].write_text(render_page({**base, "run": panel}), encoding="utf-8")
    return pages


def table_rows(page):
    return page.eval_on_selector_all("#run-table tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])")


def test_denoise_run_panel_moves_over_sigma(browser, run_pages):
    pg = browser.new_page()
    pg.goto(run_pages["denoise"].as_uri())
    pg.wait_for_selector("body[data-ready=true]")
    assert pg.is_visible("#run") and pg.is_visible("#run-level")
    assert table_rows(pg)[2] == ["bias-free", "18.25 dB"]  # starts at the largest σ
    assert "10× its maximum" in text(pg, "run-where")
    set_inputs(pg, {"run-level": 1})
    assert text(pg, "run-level-value") == "5"
    assert table_rows(pg) == [["noisy input", "34.20 dB"], ["with bias", "36.00 dB"], ["bias-free", "35.90 dB"],
                              ["bias-free − with bias", "−0.10 dB"]]
    assert "inside the training range" in text(pg, "run-where")
    set_inputs(pg, {"run-level": 0})
    assert table_rows(pg)[0] == ["noisy input", "n/a"]
    assert "ahead by 8.75 dB" in text(pg, "run-claims")
    pg.close()


def test_ablate_run_panel_moves_over_the_shift(browser, run_pages):
    pg = browser.new_page()
    pg.goto(run_pages["ablate"].as_uri())
    pg.wait_for_selector("body[data-ready=true]")
    assert text(pg, "run-level-value") == "brightness +2"  # starts at the strongest shift
    assert table_rows(pg)[1][1] == "0.4000 (95% CI 0.3700–0.4300)"
    assert "brightness +2 the biases help" in text(pg, "run-claims")
    set_inputs(pg, {"run-shift": "contrast"})
    assert text(pg, "run-level-value") == "contrast ×0.1"
    assert "contrast ×0.1 no significant" in text(pg, "run-claims") and "brightness" not in text(pg, "run-claims")
    set_inputs(pg, {"run-level": 1})
    assert table_rows(pg) == [["with-bias", "0.9000 (95% CI 0.8800–0.9200)"], ["no-bias", "0.9200 (95% CI 0.9000–0.9400)"]]
    pg.close()


def test_without_a_run_there_is_no_fifth_panel(page):
    assert not page.is_visible("#run") and not page.is_visible("#run-link")


def test_regression_sentence_follows_the_intercept_the_data_were_drawn_with(page):
    """With intercept 0 the page never says the data "need" an intercept, whatever the noise draw."""
    for draw in range(4):
        set_inputs(page, {"reg-intercept": 0.0, "reg-slope": 2.0, "reg-noise": 3.0})
        page.click("#reg-redraw")
        verdict = text(page, "reg-verdict")
        assert "drawn with intercept 0" in verdict and "cannot reach" not in verdict, verdict
    set_inputs(page, {"reg-intercept": 4.0, "reg-slope": 1.0, "reg-noise": 0.5})
    verdict = text(page, "reg-verdict")
    assert "drawn with intercept 4.000" in verdict and "cannot reach" in verdict, verdict
