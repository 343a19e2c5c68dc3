"""Money as a bureau writes it: the scenario's ``cost_unit``, and the larger unit beside it.

Chinese budgets are kept in 万元 (10⁴ yuan) and spoken of in 亿元 (10⁸ yuan): 101,694.6 万元 is
"约 10.17 亿元". :func:`money` prints an amount with its unit and, when the amount reaches one
of the larger unit, that too. Units it does not know (e.g. ``EUR``) are printed as given.
"""

from __future__ import annotations

import math

# unit → (the larger unit, how many of the unit make one of it)
_LARGER: dict[str, tuple[str, float]] = {
    "元": ("万元", 1e4),
    "万元": ("亿元", 1e4),
    "千元": ("万元", 10.0),
    "百万元": ("亿元", 100.0),
}


def larger(value: float, unit: str | None) -> tuple[float, str] | None:
    """``value`` in the larger unit (元 → 万元 → 亿元) when it is at least one of it, else None."""
    if unit is None or unit not in _LARGER or not math.isfinite(value):
        return None
    name, factor = _LARGER[unit]
    if abs(value) < factor:
        return None
    converted = value / factor
    deeper = larger(converted, name)
    return deeper if deeper is not None else (converted, name)


def money(value: float | None, unit: str | None, lang: str = "zh", digits: int = 1) -> str:
    """``value`` with its unit, and in the larger unit where natural.

    >>> money(101694.6, "万元")
    '101,694.6 万元（约 10.17 亿元）'
    >>> money(101694.6, "万元", "en")
    '101,694.6 万元 (about 10.17 亿元)'
    >>> money(850.0, "万元")
    '850.0 万元'
    """
    if value is None or not math.isfinite(float(value)):
        return "–"
    text = f"{float(value):,.{digits}f}"
    if unit is None:
        return text
    text = f"{text} {unit}"
    big = larger(float(value), unit)
    if big is None:
        return text
    amount, name = big
    return (
        f"{text}（约 {amount:,.2f} {name}）"
        if lang == "zh"
        else f"{text} (about {amount:,.2f} {name})"
    )
