"""Every Ningbo scenario runs with CBC, proves optimality, verifies, and reads right."""

from __future__ import annotations

import json

import pytest

import carecheck

from .conftest import ROOT

SCENARIOS = sorted((ROOT / "scenarios").glob("ningbo-*.yaml"))
COUNTIES = {
    "海曙区",
    "江北区",
    "北仑区",
    "镇海区",
    "鄞州区",
    "奉化区",
    "象山县",
    "宁海县",
    "余姚市",
    "慈溪市",
}


def test_the_four_planner_scenarios_exist():
    names = {p.stem for p in SCENARIOS}
    assert {"ningbo-2026", "ningbo-rural-axis", "ningbo-equity", "ningbo-budget"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_ningbo_scenario_runs_and_verifies(tmp_path, path):
    out = tmp_path / path.stem
    result = carecheck.run_scenario(path, out=out)
    assert result.status == "optimal" and result.gap == pytest.approx(0, abs=1e-9)
    assert result.verification.ok
    assert carecheck.verify_outputs(out).ok
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert document["coverage"]["demand_total"] == 2_101_000  # 60+ residents, 2024
    assert {r["region"] for r in document["coverage"]["by_region"]} == COUNTIES
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "海曙区" in report and "## 建设选址（按建设顺序）" in report
    for t, c in document["coverage"]["types"].items():
        assert c["covered_after"] >= c["covered_before"], t


def test_ningbo_2026_opens_the_plan():
    result = carecheck.run_scenario(ROOT / "scenarios" / "ningbo-2026.yaml", write=False)
    opened = result.selected.groupby("type").size().to_dict()
    assert opened == {"institution": 20, "embedded": 10}
    assert set(result.selected.loc[result.selected["type"] == "institution", "action"]) <= {
        "new",
        "expand",
    }


def test_rural_axis_tiers_and_counties():
    result = carecheck.run_scenario(
        ROOT / "scenarios" / "ningbo-rural-axis.yaml", write=False, compare=False
    )
    inst = result.selected[result.selected["type"] == "institution"]
    assert inst.groupby("tier").size().to_dict() == {"county": 2, "town": 10, "village": 8}
    outside_core = COUNTIES - {"海曙区", "江北区", "鄞州区"}
    assert outside_core <= set(inst["region"])


def test_equity_floor_and_its_price():
    result = carecheck.run_scenario(ROOT / "scenarios" / "ningbo-equity.yaml", write=False)
    for block in result.coverage["by_region"]:
        share = block["types"]["institution"]["covered_after"] / block["demand_total"]
        assert share >= 0.75 - 1e-9, block["region"]
    comparison = result.comparison
    assert comparison["baseline"] == "ningbo-2026"
    price = comparison["types"]["institution"]
    # the floor can only cost coverage in total (the baseline is the unconstrained optimum)
    assert price["this"] <= price["baseline"]
    assert price["this"] == result.coverage["types"]["institution"]["covered_after"]


def test_budget_is_respected_and_mixes_new_and_expand():
    result = carecheck.run_scenario(
        ROOT / "scenarios" / "ningbo-budget.yaml", write=False, compare=False
    )
    assert result.total_cost <= 50_000
    beds = result.selected.loc[result.selected["type"] == "institution", "beds"].sum()
    assert beds >= 3000
    actions = set(result.selected.loc[result.selected["type"] == "institution", "action"])
    assert actions == {"new", "expand"}


def test_min_sites_meets_its_targets_with_few_sites():
    result = carecheck.run_scenario(ROOT / "scenarios" / "ningbo-min-sites.yaml", write=False)
    total = result.coverage["demand_total"]
    assert result.coverage["types"]["institution"]["covered_after"] >= 0.87 * total
    assert result.coverage["types"]["embedded"]["covered_after"] >= 0.25 * total
    assert result.objective == len(result.selected) < 60


def test_beds_scenario_reports_beds_per_county():
    result = carecheck.run_scenario(ROOT / "scenarios" / "ningbo-beds.yaml", write=False)
    beds = result.beds
    assert beds["need"] == pytest.approx(2_101_000 * 40 / 1000)
    assert beds["served_before"] < beds["served_after"] <= beds["need"]
    assert result.objective == pytest.approx(beds["served_after"], abs=5)
    assert {b["region"] for b in beds["by_region"]} == COUNTIES
    assert beds["sites_without_region"] == 0


def test_linked_tiers_cost_coverage_against_the_rural_axis():
    result = carecheck.run_scenario(ROOT / "scenarios" / "ningbo-linked.yaml", write=False)
    price = result.comparison["types"]["institution"]
    assert price["this"] <= price["baseline"]


def test_fifteen_minute_walk_reaches_fewer_than_the_radius():
    result = carecheck.run_scenario(ROOT / "scenarios" / "ningbo-15min.yaml", write=False)
    walk = result.comparison["types"]["embedded"]
    # a 15-minute walk along the roads reaches fewer elderly than the 1 km straight line
    assert walk["this"] < walk["baseline"]
    assert result.network["components"] >= 1 and result.network["unreachable_demand"] == []
    assert result.reach_areas is not None and len(result.reach_areas) >= 30
