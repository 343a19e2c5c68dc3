"""Money with its unit, and in the larger unit where natural (万元 → 亿元)."""

from __future__ import annotations

import math

import pytest

from carecheck.units import larger, money


@pytest.mark.parametrize(
    ("value", "unit", "lang", "expected"),
    [
        (101694.6, "万元", "zh", "101,694.6 万元（约 10.17 亿元）"),
        (101694.6, "万元", "en", "101,694.6 万元 (about 10.17 亿元)"),
        (850.0, "万元", "zh", "850.0 万元"),  # below one 亿元: no second unit
        (10000.0, "万元", "zh", "10,000.0 万元（约 1.00 亿元）"),
        (2_500_000.0, "元", "zh", "2,500,000.0 元（约 250.00 万元）"),
        (3e9, "元", "zh", "3,000,000,000.0 元（约 30.00 亿元）"),  # 元 → 万元 → 亿元
        (1234.5, "EUR", "en", "1,234.5 EUR"),  # a unit it does not know: as given
        (1234.5, None, "zh", "1,234.5"),  # no unit: the number alone
        (None, "万元", "zh", "–"),
        (math.nan, "万元", "zh", "–"),
    ],
)
def test_money(value, unit, lang, expected):
    assert money(value, unit, lang) == expected


def test_larger_converts_by_the_right_factor():
    assert larger(101694.6, "万元") == pytest.approx((10.16946, "亿元"))
    assert larger(25.0, "千元") == pytest.approx((2.5, "万元"))
    assert larger(9999.0, "万元") is None
    assert larger(-20000.0, "万元") == pytest.approx((-2.0, "亿元"))
