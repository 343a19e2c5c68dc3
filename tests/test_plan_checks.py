"""Sites an exact count forces open for nothing, and demand no candidate can reach."""

from __future__ import annotations

import json

import pytest

from carecheck.pipeline import run_scenario

from .conftest import PADDING_DEMAND, PADDING_SITES

DEMAND = PADDING_DEMAND
SITES = [
    {"id": "s1", "x": 0.0, "y": 100.0},  # reaches a
    {"id": "s2", "x": 2000.0, "y": 100.0},  # reaches b
    {"id": "s3", "x": 2100.0, "y": 0.0},  # reaches b only: nothing once s2 is open
]


@pytest.mark.parametrize(("count_key", "idle"), [("count", ["s3"]), ("max_count", [])])
def test_idle_sites_and_unreachable_demand(make_case, tmp_path, count_key, idle):
    path = make_case(DEMAND, {"home": {"radius_m": 500, count_key: 3, "candidates": SITES}})
    out = tmp_path / "out"
    result = run_scenario(path, out=out, map_html=False)
    assert result.objective == 30
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    checks = document["plan_checks"]
    opened = sorted(result.selected["id"])
    assert opened == (["s1", "s2", "s3"] if count_key == "count" else ["s1", "s2"])
    # a brute-force recount: a site is idle when the plan without it covers as much
    assert checks["idle_sites"] == {"home": idle}
    assert checks["unreachable"] == {
        "home": {"weight": 7.0, "units": 1, "by_region": {"西区": 7.0}}
    }
    report = (out / "report.md").read_text(encoding="utf-8")
    if idle:
        assert "home：1 处新开设施不增加覆盖" in report and "`max_count`" in report
    else:
        assert "不增加覆盖" not in report and "home：每一处新开设施都增加覆盖" in report
    assert "home：7 名老年人（1 个需求点）不在任何候选点和现有设施的服务范围内" in report
    assert "（西区 7）" in report


def test_build_order_on_the_hand_instance(make_case):
    path = make_case(DEMAND, {"home": {"radius_m": 500, "count": 3, "candidates": SITES}})
    result = run_scenario(path, write=False)
    order = result.selected.sort_values("priority")
    # s2 and s3 both add b (20): the smaller id first; then s1 adds a (10); s3 adds nothing
    assert order["id"].tolist() == ["s2", "s1", "s3"]
    assert order["priority"].tolist() == [1, 2, 3]
    assert order["marginal_weight"].tolist() == [20.0, 10.0, 0.0]


def _greedy_by_hand(reach_sets, weight, ids):
    """An independent greedy with Python sets: (order of ids, what each adds)."""
    covered, order, adds = set(), [], []
    left = list(range(len(ids)))
    while left:
        gains = [sum(weight[i] for i in reach_sets[j] - covered) for j in left]
        best = max(gains)
        pick = min((ids[j], j) for j, g in zip(left, gains, strict=True) if g == best)[1]
        order.append(ids[pick])
        adds.append(best)
        covered |= reach_sets[pick]
        left.remove(pick)
    return order, adds


@pytest.mark.parametrize("seed", range(20))
def test_build_order_equals_a_greedy_recount(seed):
    import numpy as np
    import scipy.sparse as sp

    from carecheck.report import build_order

    rng = np.random.default_rng(seed)
    n_demand, n_sites = 40, 8
    reach = sp.random(n_demand, n_sites, density=0.2, random_state=seed, format="csr") > 0
    weight = rng.integers(0, 5, n_demand).astype(float)  # ties on purpose
    ids = np.array([f"s{k:02d}" for k in rng.permutation(n_sites)], dtype=object)
    priority, marginal = build_order(reach, weight, ids)
    reach_sets = [set(sp.csc_matrix(reach)[:, j].indices) for j in range(n_sites)]
    order, adds = _greedy_by_hand(reach_sets, weight, list(ids))
    by_priority = np.argsort(priority)
    assert [ids[j] for j in by_priority] == order
    assert marginal[by_priority].tolist() == adds


def test_an_exact_count_is_padded_with_the_cheapest_sites(make_case, tmp_path):
    """count: 4 where two sites cover everyone reachable: the plan is solved as "at most 4"
    and padded with the cheapest of the rest, then by candidate order (model.pad_counts)."""
    sites = PADDING_SITES
    path = make_case(DEMAND, {"home": {"radius_m": 500, "count": 4, "candidates": sites}})
    out = tmp_path / "out"
    result = run_scenario(path, out=out, map_html=False)
    assert result.objective == 30 and result.status == "optimal"
    assert sorted(result.selected["id"]) == ["s1", "s2", "s3", "s4"]
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert document["count_padding"] == {
        "rule": "cheapest_then_order",
        "sites": {"home": ["s3", "s4"]},
    }
    assert document["verification"]["ok"]
    assert sorted(document["plan_checks"]["idle_sites"]["home"]) == ["s3", "s4"]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "另选 2 处不增加覆盖人数的站点（s3、s4）" in report
    assert "按建设成本由低到高" in report
    # max_count: nothing padded, and result.json says so
    plain = make_case(DEMAND, {"home": {"radius_m": 500, "max_count": 4, "candidates": sites}})
    run_scenario(plain, out=tmp_path / "plain", map_html=False)
    document = json.loads((tmp_path / "plain" / "result.json").read_text(encoding="utf-8"))
    assert document["count_padding"] is None
