"""Assemble the explorer page: one HTML file with its stylesheet, script and data inlined.

The static files live beside this module (``static/explore.html``, ``explore.css``,
``explore.js``) and are read with :mod:`importlib.resources`, so they work from a wheel too.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["static_text", "render_page"]


def static_text(name: str) -> str:
    """The text of ``static/<name>`` shipped with the package."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _script_safe_json(data: dict[str, Any]) -> str:
    """JSON that cannot end its ``<script>`` element early (``<`` is escaped as ``\\u003c``)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render_page(data: dict[str, Any]) -> str:
    """The self-contained explorer page for ``data`` (from :func:`biaslab.explore.data.explorer_data`)."""
    parts = {
        "{{style}}": static_text("explore.css"),
        "{{script}}": static_text("explore.js"),
        "{{version}}": data["biaslab_version"],
        "{{data}}": _script_safe_json(data),
    }
    page = static_text("explore.html")
    for marker, text in parts.items():  # the data last: it is the only part that could hold a marker
        page = page.replace(marker, text)
    return page
