"""The demo's result: which sections ran, and the classic claims measured across them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .base import Claim, Result

__all__ = ["DemoResult"]


@dataclass
class DemoResult(Result):
    """``sections`` name the sub-folders (one command's results.json each), in report order.

    ``claims`` are the course's classic statements about the bias, each with the verdict of the
    section that measured it (``evidence["section"]``). ``parts`` holds the sections' results in
    memory after a run; on disk they live in ``OUT/<section>/results.json``.
    """

    command: ClassVar[str] = "demo"
    sections: list[str]
    claims: list[Claim]
    params: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, Result] = field(default_factory=dict, repr=False, metadata={"stored": False})
