"""Speed of the explorer page in headless Chromium (issue 14): repaint, load, file size.

Targets: a bias change repaints a 256×256 conv map in ≤ 16 ms (one frame at 60 Hz), timed
with performance.now() inside the page; the page loads from disk in ≤ 1 s; the file is ≤ 3 MB.
The default 512×512 page is measured too. Prints one JSON line per page.

    python benchmarks/bench_explore.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from biaslab.explore import write_explorer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TARGETS = {"repaint_ms": 16.0, "load_s": 1.0, "bytes": 3 * 1024 * 1024}

# One bias change as a user makes it: set the slider, fire `input`; every number and both maps
# are updated synchronously by the handler, so the elapsed time is the whole update.
REPAINT = """async (biases) => {
    const el = document.getElementById("conv-bias"), times = [], paints = [];
    for (const b of biases) {
        const t0 = performance.now();
        el.value = String(b);
        el.dispatchEvent(new Event("input", { bubbles: true }));
        times.push(performance.now() - t0);
        paints.push(window.biaslabExplore.timing.lastConvPaintMs);
        await new Promise((resolve) => requestAnimationFrame(resolve));
    }
    return { times, paints };
}"""


def measure(browser, page_file: Path, repeats: int) -> dict:
    loads = []
    for _ in range(3):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        t0 = time.perf_counter()
        page.goto(page_file.as_uri())
        page.wait_for_selector("body[data-ready=true]")
        loads.append((time.perf_counter() - t0, page.evaluate("window.biaslabExplore.timing.readyMs") / 1000))
        page.close()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_file.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    biases = [round(-1 + 2 * (i % 201) / 200, 2) for i in range(7, 7 + 13 * repeats, 13)]
    out = page.evaluate(REPAINT, biases)
    shape = page.evaluate("[document.getElementById('conv-map').height, document.getElementById('conv-map').width]")
    page.close()
    result = {
        "map": f"{shape[0]}x{shape[1]}",
        "bytes": page_file.stat().st_size,
        "load_s_median": statistics.median(wall for wall, _ in loads),
        "ready_in_page_s_median": statistics.median(ready for _, ready in loads),
        "repaint_ms_median": statistics.median(out["times"]),
        "repaint_ms_max": max(out["times"]),
        "map_paint_ms_median": statistics.median(out["paints"]),
    }
    result["meets_targets"] = (result["repaint_ms_median"] <= TARGETS["repaint_ms"]
                               and result["load_s_median"] <= TARGETS["load_s"] and result["bytes"] <= TARGETS["bytes"])
    return result


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="bias changes per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for max_size in (256, 512):
            page_file = write_explorer(Path(tmp) / str(max_size), max_size=max_size)
            print(json.dumps({"max_size": max_size, **measure(browser, page_file, args.repeats)}))
        browser.close()
    print(json.dumps({"targets": TARGETS}))


if __name__ == "__main__":
    main()
