"""The result protocol: dataclasses that round-trip through JSON, and claims with evidence."""

from __future__ import annotations

import base64
import dataclasses
import functools
import math
import numbers
import os
import string
import sys
import types
import typing
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..infra.numfmt import number_text

__all__ = ["SCHEMA_VERSION", "VERDICTS", "Claim", "Result", "encode", "decode", "INLINE_ARRAY_LIMIT"]

#: Version of the results.json layout; a file of another version is refused with a clear message.
SCHEMA_VERSION = 2

#: Finite arrays with at most this many elements are stored as readable JSON lists; larger ones,
#: and any holding inf or NaN, as zlib-compressed base64 of their raw bytes (same dtype, shape, values).
INLINE_ARRAY_LIMIT = 1024


class _NumberFormatter(string.Formatter):
    """``str.format`` that writes numbers as :mod:`biaslab.infra.numfmt` does: signs with "−",
    exponents as ``2.6e4``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        text = super().format_field(value, format_spec)
        return number_text(text) if isinstance(value, numbers.Real) and not isinstance(value, bool) else text


_NUMBERS = _NumberFormatter()


#: The four verdicts a claim can carry, and the ``holds`` value each goes with.
VERDICTS = {"holds": True, "refuted": False, "inconclusive": None, "not measured": None}


@dataclass(frozen=True)
class Claim:
    """One conclusion computed from the numbers.

    ``statement`` is the proposition being tested ("the bias lowers the MSE by at least 1 %");
    ``verdict`` is one of :data:`VERDICTS`: ``holds`` (the data show it), ``refuted`` (the data
    show the opposite: a significant effect the other way, or an effect inside a stated
    equivalence margin, or an exact check that fails), ``inconclusive`` (measured, but the data
    cannot decide: "not significant" is not "does not hold") or ``not measured``. ``holds`` is
    True / False / None to match (None for inconclusive and not measured). ``text`` is the
    conclusion as measured, in words that are right for that verdict, and ``evidence`` holds
    every number the verdict rests on, threshold included.

    ``verdict`` may be omitted: it is then derived from ``holds`` (True → holds, False →
    refuted, None → not measured), which is also how results.json files written before verdicts
    existed are read.
    """

    id: str
    text: str
    holds: bool | None
    evidence: dict[str, Any] = field(default_factory=dict)
    statement: str = ""
    verdict: str = ""

    def __post_init__(self) -> None:
        holds = None if self.holds is None else bool(self.holds)
        object.__setattr__(self, "holds", holds)
        if not self.verdict:
            object.__setattr__(self, "verdict", {True: "holds", False: "refuted", None: "not measured"}[holds])
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id!r}: verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")
        if VERDICTS[self.verdict] is not holds:
            raise ValueError(f"claim {self.id!r}: verdict {self.verdict!r} does not go with holds = {holds}")

    @classmethod
    def decide(cls, id: str, holds: bool | None, evidence: dict[str, Any], *, statement: str, true: str,
               false: str, unknown: str | None = None, verdict: str = "") -> "Claim":
        """A claim whose text is the template for its verdict, filled from ``evidence``.

        ``statement``, ``true``, ``false`` and ``unknown`` are ``str.format`` templates over the
        evidence, so the sentence can never disagree with the numbers it quotes (negative
        numbers with the minus sign "−"). ``verdict``: ``inconclusive`` for a measured claim the
        data cannot decide (``holds`` None); default derived from ``holds``.
        """
        template = true if holds else false if holds is False else (unknown if unknown is not None else false)
        return cls(id, _NUMBERS.format(template, **evidence), None if holds is None else bool(holds),
                   dict(evidence), _NUMBERS.format(statement, **evidence), verdict)

    @classmethod
    def of(cls, id: str, verdict: str, text: str, evidence: dict[str, Any], statement: str = "") -> "Claim":
        """A claim from its verdict (``holds`` follows from it)."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        return cls(id, text, VERDICTS[verdict], dict(evidence), statement, verdict)


class Result:
    """Base of every command's result dataclass.

    Subclasses are dataclasses with a ``command`` class variable, a ``params`` dict and a
    ``claims`` list; :meth:`to_dict` and :meth:`from_dict` follow the fields' type hints. A
    field with ``metadata={"stored": False}`` lives in memory only (not in results.json).
    """

    command: ClassVar[str]
    claims: list[Claim]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (arrays encoded, non-finite floats as None)."""
        return encode(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        """Rebuild the result from :meth:`to_dict`'s output (or a results.json payload's fields)."""
        return decode(cls, data)

    def claim(self, id: str) -> Claim:
        """The claim with this id; KeyError if the result has none."""
        for c in self.claims:
            if c.id == id:
                return c
        raise KeyError(f"{self.command} result has no claim {id!r}")

    # In a notebook a result shows itself; the HTML is built by biaslab.render.notebook (imported
    # only when asked), from the command's own renderer: results stay pure data.
    def _repr_html_(self) -> str:
        """Claims with their verdicts, the main numbers and the key figure, as the report renders them."""
        from ..render.notebook import result_html

        return result_html(self)

    def figure(self, name: str):
        """The matplotlib Figure ``name`` (a file stem of the command's ``--out DIR``), to restyle or save."""
        from ..render.notebook import result_figure

        return result_figure(self, name)

    def figure_names(self) -> list[str]:
        """The names :meth:`figure` accepts, in the renderer's order."""
        from ..render.notebook import figure_names

        return figure_names(self)


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    a = np.asarray(a)
    if a.dtype == object:
        raise TypeError("object arrays cannot be stored in results")
    head = {"__ndarray__": str(a.dtype), "shape": list(a.shape)}
    finite = a.dtype.kind in "biu" or (a.dtype.kind == "f" and bool(np.isfinite(a).all()))
    if a.size <= INLINE_ARRAY_LIMIT and finite:  # JSON has no inf/NaN: such arrays go binary, exactly
        return {**head, "data": a.reshape(-1).tolist()}
    raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
    return {**head, "zlib": base64.b64encode(zlib.compress(raw, 6)).decode("ascii")}


def _decode_array(d: dict[str, Any]) -> np.ndarray:
    """The array of an ``{"__ndarray__": dtype, "shape": ..., "data" | "zlib": ...}`` record.

    Never allocates more than the declared shape needs: ``zlib`` is inflated to at most
    shape × itemsize bytes (+1 to see an excess), then refused if it holds more or less.
    ValueError for any record that does not describe exactly one array of a plain dtype
    (results are validated against their schema first; this is the last line of defence).
    """
    dtype = np.dtype(d["__ndarray__"])
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise ValueError(f"array dtype {dtype} is not a plain bool, integer or float")
    shape = tuple(int(s) for s in d["shape"])
    if any(s < 0 for s in shape):
        raise ValueError(f"array shape {shape} is negative")
    count = math.prod(shape)
    if "data" in d:
        if len(d["data"]) != count:
            raise ValueError(f"array shape {shape} needs {count} values, found {len(d['data'])}")
        return np.asarray(d["data"], dtype=dtype).reshape(shape)
    nbytes = count * dtype.itemsize
    try:
        packed = base64.b64decode(d["zlib"], validate=True)
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, nbytes + 1)
        complete = inflate.eof
    except (zlib.error, ValueError) as exc:
        raise ValueError(f"array data is corrupt ({type(exc).__name__}: {exc})") from None
    if len(raw) > nbytes:
        raise ValueError(f"array data inflates to more than the {nbytes} bytes its shape {shape} needs")
    if len(raw) < nbytes or not complete:
        raise ValueError(f"array data is truncated ({len(raw)} of {nbytes} bytes for shape {shape})")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def encode(obj: Any, *, tag_arrays: bool = True) -> Any:
    """Plain JSON types for dataclasses, NumPy arrays and scalars, paths, tuples; NaN/inf → None.

    Parameters
    ----------
    obj : the value to encode.
    tag_arrays : True (results.json): an array becomes a ``{"__ndarray__": dtype, "shape": ...}``
        record that :func:`decode` turns back into the same array. False (runs.jsonl): an array
        becomes a plain nested list, read back by key rather than by type.
    """

    def walk(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {f.name: walk(getattr(x, f.name)) for f in dataclasses.fields(x) if f.metadata.get("stored", True)}
        if isinstance(x, np.ndarray):
            return _encode_array(x) if tag_arrays else walk(x.tolist())
        if isinstance(x, dict):
            return {str(k): walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if isinstance(x, np.generic):
            return walk(x.item())
        if isinstance(x, float):
            return x if math.isfinite(x) else None
        if isinstance(x, os.PathLike):
            return os.fspath(x)
        return x

    return walk(obj)


def _decode_any(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return _decode_array(value)
        return {k: _decode_any(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_any(v) for v in value]
    return value


@functools.lru_cache(maxsize=None)
def _fields(tp: type) -> tuple[dict[str, Any], tuple[dataclasses.Field, ...]]:
    """The type hints and stored init fields of dataclass ``tp`` (computed once: a file may hold 100,000 claims)."""
    hints = typing.get_type_hints(tp, vars(sys.modules[tp.__module__]))
    return hints, tuple(f for f in dataclasses.fields(tp) if f.init and f.metadata.get("stored", True))


def decode(tp: Any, value: Any) -> Any:
    """Rebuild a value of type ``tp`` from :func:`encode`'s output."""
    if isinstance(value, dict) and "__ndarray__" in value:
        return _decode_array(value)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None if type(None) in args else float("nan") if float in args else None
        options = [a for a in args if a is not type(None)]
        return decode(options[0], value) if len(options) == 1 else _decode_any(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints, fields = _fields(tp)
        kwargs = {f.name: decode(hints.get(f.name, Any), value[f.name]) for f in fields if f.name in value}
        return tp(**kwargs)
    if origin is list:
        return [decode(args[0] if args else Any, v) for v in value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in value)
        return tuple(decode(a, v) for a, v in zip(args, value)) if args else tuple(value)
    if origin is dict:
        vt = args[1] if len(args) == 2 else Any
        return {k: decode(vt, v) for k, v in value.items()}
    if tp is float:
        return float("nan") if value is None else float(value)
    if tp is int and value is not None:
        return int(value)
    return _decode_any(value)
