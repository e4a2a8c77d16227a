"""The explorer inside a notebook: an anywidget built from the page's own files.

:func:`explorer_widget` (``biaslab.explore.widget``) mounts the panels of ``static/explore.html``
with ``static/explore.css`` and runs ``static/explore.js`` on them — the same source the page
inlines, read at run time, so the page and the widget cannot drift apart. ``static/widget.js``
only mounts them and wires the bias back to Python. Nothing is fetched: the widget is offline.

Given the learner's own ``torch.nn.Conv2d`` and an image, the conv panel shows *that* layer:
one entry per output channel, Σ(input * kernel) from :func:`biaslab.experiments.conv.run.kernel_sums`
(the sums ``biaslab conv`` counts, exact zeros kept exact, with the layer's stride and padding), and
one bias slider per channel starting at ``layer.bias``. Moving a slider sets ``w.bias`` in Python
and writes it into the layer; setting ``w.bias`` moves the sliders. The active share shown is
``fraction_active(Σ, b)``, what ``biaslab conv`` reports for that kernel, bias and image.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..infra.io import BiaslabError
from .data import DEFAULT_RANDOM, encode_array, explorer_data
from .page import static_text

__all__ = ["explorer_widget", "layer_panel", "widget_module", "PANELS"]

#: The panels a widget can show, by their section id in explore.html.
PANELS = ("activation", "plane", "regression", "conv")
#: A layer's image is block-averaged to at most this many pixels a side (its sums travel whole).
WIDGET_MAX_SIZE = 256


def widget_module() -> str:
    """The widget's ES module: explore.js (unchanged) then widget.js, with BIASLAB_WIDGET set."""
    return "const BIASLAB_WIDGET = true;\n" + static_text("explore.js") + "\n" + static_text("widget.js")


def page_parts() -> tuple[str, str]:
    """The page's panels (the ``<main>`` of explore.html) and its stylesheet scoped to a shadow root."""
    page = static_text("explore.html")
    match = re.search(r"<main>.*</main>", page, re.S)
    if match is None:  # pragma: no cover - the shipped page always has one
        raise RuntimeError("explore.html has no <main> element")
    css = static_text("explore.css").replace(":root {", ":host {").replace("\nbody {", "\n:host {")
    return match.group(0), css + "\n:host { display: block; font-size: 15px; }  /* a notebook cell, not a page */\n"


def _layer_geometry(layer: Any) -> tuple[tuple[int, int], int | tuple[int, int] | str]:
    """(stride, padding) of a Conv2d the library can reproduce exactly; BiaslabError otherwise."""
    import torch.nn as nn

    if not isinstance(layer, nn.Conv2d):
        raise BiaslabError(f"widget(layer, image) needs a torch.nn.Conv2d, got {type(layer).__name__}")
    if layer.bias is None:
        raise BiaslabError("this Conv2d has no bias (bias=False): there is nothing to move; "
                           "build it with bias=True")
    if tuple(layer.dilation) != (1, 1) or layer.groups != 1 or layer.padding_mode != "zeros":
        raise BiaslabError("widget(layer, image) shows Conv2d layers with dilation 1, groups 1 and zero padding; "
                           f"this one has dilation {tuple(layer.dilation)}, groups {layer.groups}, "
                           f"padding_mode {layer.padding_mode!r}")
    from ..math.kernels import MAX_KERNELS

    if layer.out_channels > MAX_KERNELS:
        raise BiaslabError(f"the layer has {layer.out_channels} output channels; the widget shows at most "
                           f"{MAX_KERNELS}: pass a layer with fewer")
    padding = layer.padding if isinstance(layer.padding, str) else tuple(int(p) for p in layer.padding)
    return (int(layer.stride[0]), int(layer.stride[1])), padding


def _layer_image(image: Any, channels: int, max_size: int) -> tuple[np.ndarray, str, tuple[int, int]]:
    """The image as (C, H, W) float64 for a layer with ``channels`` input channels."""
    from ..experiments.conv.run import MAX_IMAGE_SIDE, downscale, prepare_image

    if channels not in (1, 3) and isinstance(image, (str, Path)):
        raise BiaslabError(f"the layer takes {channels} input channels; a picture has 1 (grey) or 3 (colour): "
                           "pass the image as an array of shape (C, H, W)")
    if isinstance(image, str) and not Path(image).suffix:  # a scikit-image name, like biaslab conv --builtin
        return prepare_image(image, None, channels == 3, max_size)
    if isinstance(image, (str, Path)):
        return prepare_image(None, image, channels == 3, max_size)
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] != channels:
        raise BiaslabError(f"the image must have shape (H, W), ({channels}, H, W) or (1, {channels}, H, W) for "
                           f"this layer ({channels} input channel{'s' if channels != 1 else ''}); got {np.shape(image)}")
    if not np.isfinite(arr).all():
        raise BiaslabError("the image holds NaN or infinite values; pass finite pixel values")
    h, w = arr.shape[1:]
    if min(h, w) < 1 or max(h, w) > MAX_IMAGE_SIDE:
        raise BiaslabError(f"the image is {h}×{w}; each side must be between 1 and {MAX_IMAGE_SIDE}")
    small = np.moveaxis(downscale(np.moveaxis(arr, 0, -1), max_size), -1, 0)
    return np.ascontiguousarray(small), f"your image ({channels}×{h}×{w})", (h, w)


def _slider(sums: list[np.ndarray], biases: np.ndarray) -> dict[str, float]:
    """A symmetric range that reaches every unit's on/off switch and the layer's own biases."""
    reach = max([float(np.abs(s).max()) for s in sums] + [float(np.abs(biases).max()), 0.1])
    step = 10.0 ** math.floor(math.log10(reach)) / 100
    bound = math.ceil(reach / step / 10) * step * 10
    return {"min": -round(bound, 10), "max": round(bound, 10), "step": float(f"{step:.1g}")}


def layer_panel(layer: Any, image: Any, max_size: int = WIDGET_MAX_SIZE) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The conv panel's data for ``layer`` on ``image``, and the library's Σ of each output channel.

    Parameters
    ----------
    layer : a ``torch.nn.Conv2d`` (dilation 1, groups 1, zero padding, with a bias).
    image : a scikit-image name (``"camera"``), an image file, or an array/tensor of shape (H, W),
        (C, H, W) or (1, C, H, W) with C the layer's input channels; block-averaged to at most
        ``max_size`` pixels a side, as ``biaslab conv`` does.
    """
    from ..experiments.conv.run import kernel_sums
    from ..math.conv import _geometry

    stride, padding = _layer_geometry(layer)
    picture, source, original = _layer_image(image, layer.in_channels, max_size)
    weights = layer.weight.detach().cpu().double().numpy()
    biases = layer.bias.detach().cpu().double().numpy()
    kh, kw = weights.shape[2:]
    geom = _geometry(picture.shape[1:], (kh, kw), stride, padding, 1)
    sums = [kernel_sums(picture, weights[c], stride, padding) for c in range(weights.shape[0])]
    kernels = []
    for c, total in enumerate(sums):
        kernels.append({
            "name": f"channel {c}",
            "weights": (weights[c, 0] if weights.shape[1] == 1 else weights[c]).tolist(),
            "bias": float(biases[c]),
            "sum_min": float(total.min()),
            "sum_max": float(total.max()),
            "sums": encode_array(total, "float64"),
        })
    c, h, w = picture.shape
    pad_text = f"padding {padding!r}" if isinstance(padding, str) else f"padding {padding}"
    intro = (f"Your layer: Conv2d({layer.in_channels}, {layer.out_channels}, kernel {kh}×{kw}, stride {stride}, "
             f"{pad_text}) on {source}" + (f", block-averaged to {h}×{w}" if (h, w) != tuple(original) else "")
             + ". Each output channel is one kernel; the bias slider moves that channel's bias in your layer "
             "(w.bias in Python). Σ(input * kernel) is biaslab's float64 sum, the one biaslab conv counts: "
             "a unit fires where Σ > −b. Click a pixel, or focus a map and use the arrow keys.")
    panel = {
        "source": source,
        "original_size": list(original),
        "image": {**encode_array(picture if c > 1 else picture[0], "float32"), "scale": 1.0},
        "map_shape": list(sums[0].shape),
        "geometry": {"stride": list(stride), "pad_before": list(geom.pad_before)},
        "bias_slider": _slider(sums, biases),
        "kernels": kernels,
        "intro": intro,
    }
    return panel, sums


def explorer_widget(layer: Any = None, image: Any = None, *, panels: list[str] | tuple[str, ...] | None = None,
                    max_size: int | None = None, random: int = DEFAULT_RANDOM, seed: int = 0):
    """The explorer's panels as a notebook widget (anywidget: JupyterLab, Notebook 7, VS Code).

    Parameters
    ----------
    layer, image : optional: your ``torch.nn.Conv2d`` and the image to run it on (see
        :func:`layer_panel`); the conv panel then shows your layer and moves its biases.
        Without them the conv panel shows the page's default picture and kernels.
    panels : which panels to show, from :data:`PANELS` (default: all; only ``conv`` with a layer).
    max_size : block-average the image to at most this many pixels a side (default 512 for the
        page's picture, 256 for a layer's image).
    random, seed : the page's random kernels, without a layer.

    Returns
    -------
    An ``ExplorerWidget``: display it (last expression of a cell). ``w.bias`` holds the layer's
    biases as the sliders set them (written into the layer too); ``w.active_share(channel)``
    is the share of that channel's units with Σ > −bias; ``w.reset()`` restores the layer's
    biases as they were.
    """
    try:
        import anywidget  # noqa: F401
    except ImportError:
        raise BiaslabError("the notebook widget needs anywidget: pip install 'biaslab[notebook]'") from None
    if (layer is None) != (image is None):
        raise BiaslabError("pass both a Conv2d layer and an image, or neither")
    if panels is None:
        panels = ["conv"] if layer is not None else list(PANELS)
    unknown = [p for p in panels if p not in PANELS]
    if unknown or not panels:
        raise BiaslabError(f"unknown panel(s) {unknown}; choose from {', '.join(PANELS)}")
    data = explorer_data(None, None, max_size or 512, random, seed) if layer is None else None
    sums: list[np.ndarray] = []
    if layer is not None:
        from .. import __version__
        from .data import regression_panel

        conv, sums = layer_panel(layer, image, max_size or WIDGET_MAX_SIZE)
        data = {"biaslab_version": __version__, "seed": seed, "conv": conv, "regression": regression_panel(),
                "run": None}
    return _widget_class()(layer=layer, sums=sums, data=data, panels=list(panels))


_CLASS = None


def _widget_class():
    """The anywidget class, defined on first use (anywidget and traitlets are imported only then)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import anywidget
    import traitlets

    html, css = page_parts()

    class ExplorerWidget(anywidget.AnyWidget):
        """biaslab's explorer in a notebook; ``bias`` is the learner's layer's biases, one per channel."""

        _esm = widget_module()
        _page_html = traitlets.Unicode(html).tag(sync=True)
        _page_css = traitlets.Unicode(css).tag(sync=True)
        _data = traitlets.Dict().tag(sync=True)
        panels = traitlets.List(traitlets.Unicode()).tag(sync=True)
        bias = traitlets.List(traitlets.Float()).tag(sync=True)

        def __init__(self, layer: Any, sums: list[np.ndarray], data: dict[str, Any], panels: list[str]):
            self._layer = layer
            self._sums = sums
            initial = [k["bias"] for k in data["conv"]["kernels"]] if layer is not None else []
            self._initial = list(initial)
            super().__init__(_data=data, panels=panels, bias=initial)
            self.observe(self._write_layer, names="bias")

        def _write_layer(self, change: dict[str, Any]) -> None:
            if self._layer is None:
                return
            import torch

            values = change["new"]
            if len(values) != len(self._initial):
                raise BiaslabError(f"bias needs {len(self._initial)} values, one per output channel; got {len(values)}")
            with torch.no_grad():
                self._layer.bias.copy_(torch.tensor(values, dtype=self._layer.bias.dtype))

        def active_share(self, channel: int = 0) -> float:
            """Share of channel ``channel``'s units with Σ(input * kernel) > −bias, as biaslab conv counts them."""
            from ..math.conv import fraction_active

            if self._layer is None:
                raise BiaslabError("active_share needs a layer: widget(conv_layer, image)")
            return fraction_active(self._sums[channel], self.bias[channel])

        def reset(self) -> None:
            """Put the layer's biases back to what they were when the widget was made."""
            self.bias = list(self._initial)

    _CLASS = ExplorerWidget
    return _CLASS
