"""Numbers as people read them: no "p = 0", no "-0.0000", no "inf", no "1." for 1.004, and
the minus sign "−" (as in the figures) rather than a hyphen.

Claim sentences and renderers both format through these helpers, so a statistic reads the same
everywhere. They are plain functions of a number, below both the results and the render layer.
"""

from __future__ import annotations

import math
import re

__all__ = ["minus", "number_text", "fmt_num", "fmt_fixed", "fmt_p", "fmt_pct", "fmt_effect", "fmt_signed"]


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def minus(text: str) -> str:
    """Python's hyphen-minus in a formatted number (sign, exponent) as the minus sign "−"."""
    return text.replace("-", "−")


_EXPONENT = re.compile(r"e([+-])0*(\d+)")


def number_text(text: str) -> str:
    """A number Python formatted (``-2.6e+04``) as people read it: ``−2.6e4`` (minus sign, no ``+``
    or leading zeros in the exponent)."""
    return minus(_EXPONENT.sub(lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), text))


def fmt_num(x: float | int | None, sig: int = 4) -> str:
    """``sig`` significant digits, trailing zeros dropped; integers as they are; NaN/None as "n/a"."""
    if _missing(x):
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    return number_text(f"{x:.{sig}g}")


def fmt_fixed(x: float | None, decimals: int = 4) -> str:
    """``decimals`` places; a value that rounds to zero prints as 0 (never "-0.0000")."""
    if _missing(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    text = f"{x:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else minus(text)


def fmt_signed(x: float | None, decimals: int = 2, unit: str = "") -> str:
    """``+1.23 dB`` / ``−0.04 dB``; zero after rounding prints as ``0``."""
    if _missing(x):
        return "n/a"
    text = fmt_fixed(abs(x), decimals)
    if float(text) == 0:
        return f"0{unit}"
    return f"{'+' if x > 0 else '−'}{text}{unit}"


def fmt_p(p: float | None) -> str:
    """``p = 0.041``, ``p < 0.0001``, or ``p n/a`` when the test could not run."""
    if _missing(p):
        return "p n/a"
    if p < 1e-4:
        return "p < 0.0001"
    return f"p = {p:.2g}" if p < 1 else "p = 1"


def fmt_pct(fraction: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage: ``46.9 %``; tiny but non-zero values as ``< 0.1 %``."""
    if _missing(fraction):
        return "n/a"
    pct = 100.0 * fraction
    floor = 10.0 ** -decimals
    if 0 < abs(pct) < floor:
        return f"< {floor:g} %" if pct > 0 else f"> −{floor:g} %"
    return f"{fmt_fixed(pct, decimals)} %"


def fmt_effect(d: float | None) -> str:
    """Cohen's d_z; infinite when every paired difference is the same non-zero value."""
    if _missing(d):
        return "d_z n/a (no difference)"
    if math.isinf(d):
        return "d_z unbounded (every seed differs by the same amount)"
    return f"d_z = {fmt_fixed(d, 2)}"
