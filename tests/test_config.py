"""Scenario validation: every problem in a file reported at once, by key path and value."""

from __future__ import annotations

import math

import pytest

from carecheck import ScenarioError, load_scenario
from carecheck.config import is_name, scenario_from_dict

from .conftest import EXAMPLE


def base() -> dict:
    return {
        "name": "t",
        "demand": {"path": "d.geojson", "id": "id", "weight": "w"},
        "facilities": {
            "home": {"radius_m": 1000, "count": 2, "candidates": {"path": "c.geojson", "id": "id"}}
        },
    }


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="s.yaml")
    return info.value.problems


def test_example_loads_with_resolved_paths():
    scenario = load_scenario(EXAMPLE)
    assert scenario.name == "example"
    assert scenario.demand.path.is_absolute() and scenario.demand.path.exists()
    assert scenario.facilities["institution"].reach_of("village") == ("radius_m", 1500, None)
    assert scenario.facilities["institution"].reach_of(None) == ("radius_m", 3000, None)
    assert scenario.solver.mip_gap == 0.0


def test_all_problems_reported_at_once_with_key_paths():
    data = base()
    data["name"] = "bad name!"
    data["facilities"]["home"]["radius_m"] = -5
    data["facilities"]["home"]["cuont"] = 3
    data["solver"] = {"name": "gurobi"}
    problems = problems_of(data)
    joined = "\n".join(problems)
    assert len(problems) == 4, joined
    assert "s.yaml → name: the scenario name names the output folder" in joined
    assert "(got: 'bad name!')" in joined
    assert "s.yaml → facilities.home.radius_m: Input should be greater than 0 (got: -5)" in joined
    assert "s.yaml → facilities.home.cuont: unknown key (misspelled?)" in joined
    assert "s.yaml → solver.name:" in joined and "'gurobi'" in joined


def test_missing_required_keys():
    data = base()
    del data["demand"]["weight"]
    del data["facilities"]["home"]["candidates"]
    joined = "\n".join(problems_of(data))
    assert "demand.weight: Field required" in joined
    assert "facilities.home.candidates: Field required" in joined


def test_count_and_min_count_conflict():
    data = base()
    data["facilities"]["home"]["min_count"] = 1
    assert any("give `count` alone" in p for p in problems_of(data))


def test_min_above_max():
    data = base()
    home = data["facilities"]["home"]
    del home["count"]
    home.update(min_count=5, max_count=2)
    assert any("min_count 5 is larger than max_count 2" in p for p in problems_of(data))


def test_unbounded_type_needs_count_or_budget():
    data = base()
    del data["facilities"]["home"]["count"]
    joined = "\n".join(problems_of(data))
    assert "facilities.home: no `count`, `max_count`" in joined


def test_tiers_need_reach_and_tier_column():
    data = base()
    home = data["facilities"]["home"]
    del home["radius_m"]
    home["tiers"] = {"town": {"radius_m": 3000}, "village": {"count": 1}}
    joined = "\n".join(problems_of(data))
    assert "tiers without one: village" in joined
    data["facilities"]["home"]["tiers"]["village"]["radius_m"] = 1000
    joined = "\n".join(problems_of(data))
    assert "`candidates` needs a `tier` column mapping" in joined


def test_tier_minimums_above_type_count():
    data = base()
    home = data["facilities"]["home"]
    home["candidates"]["tier"] = "tier"
    home["tiers"] = {"town": {"min_count": 2}, "village": {"count": 1}}
    assert any("at least 3 sites but the type's count is 2" in p for p in problems_of(data))


def test_constraints_refer_to_known_types_and_columns():
    data = base()
    data["constraints"] = {
        "budget": 100,
        "region_min_sites": {"hospital": 1, "home": 1},
        "region_min_coverage": {"home": 1.5},
    }
    data["objective"] = {"kind": "max_coverage", "weights": {"clinic": 2}}
    joined = "\n".join(problems_of(data))
    assert "constraints.region_min_coverage.home: Input should be less than or equal to 1" in joined
    data["constraints"]["region_min_coverage"] = {"home": 0.5}
    joined = "\n".join(problems_of(data))
    assert "constraints.region_min_sites.hospital: unknown facility type" in joined
    assert "objective.weights.clinic: unknown facility type" in joined
    assert "demand.region: per-region constraints need a region column" in joined
    assert "facilities.home.candidates.region: constraints.region_min_sites needs" in joined
    assert "facilities.home.candidates.cost: constraints.budget needs a cost column" in joined


def test_objective_shorthand_and_unknown_objective():
    data = base()
    data["objective"] = "max_coverage"
    assert scenario_from_dict(data).objective.kind == "max_coverage"
    data["objective"] = "min_cost"
    assert any(p.startswith("s.yaml → objective.kind:") for p in problems_of(data))


def test_missing_layer_file_named(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: t\ndemand: {path: nowhere.gpkg, id: id, weight: w}\n"
        "facilities:\n  home: {radius_m: 10, count: 1, candidates: {path: c.csv, id: id}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    joined = "\n".join(info.value.problems)
    assert "demand.path: file not found; paths are relative to the scenario file" in joined
    assert "nowhere.gpkg" in joined
    assert "facilities.home.candidates.path: file not found" in joined


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: t\ndemand: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "invalid YAML" in str(info.value) and "line" in str(info.value)


def test_non_utf8_file_is_refused_with_advice(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes("name: 宁波\n".encode("gbk"))
    with pytest.raises(ScenarioError, match="save it as UTF-8"):
        load_scenario(path)


def test_scenario_not_found(tmp_path):
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "missing.yaml")


def test_top_level_must_be_mapping():
    with pytest.raises(ScenarioError, match="expected a mapping"):
        scenario_from_dict(["a"], source="s.yaml")


def test_cli_overrides_are_checked():
    scenario = load_scenario(EXAMPLE)
    assert scenario.with_solver(name="highs", time_limit_s=5, mip_gap=0.01).solver.name == "highs"
    with pytest.raises(ScenarioError, match="--gap"):
        scenario.with_solver(mip_gap=1.5)
    with pytest.raises(ScenarioError, match="--time-limit"):
        scenario.with_solver(time_limit_s=-1)
    for bad in (math.inf, math.nan):
        with pytest.raises(ScenarioError, match="--time-limit: must be a finite number"):
            scenario.with_solver(time_limit_s=bad)
        with pytest.raises(ScenarioError, match="--gap"):
            scenario.with_solver(mip_gap=bad)


@pytest.mark.parametrize("bad", ["t\n", "t\r", "t\t", "t x", "\nt", "t\x85", ""])
def test_names_match_as_a_whole(bad):
    data = base()
    data["name"] = bad
    data["facilities"][bad] = data["facilities"].pop("home")
    joined = "\n".join(problems_of(data))
    assert (
        "s.yaml → name: the scenario name names the output folder: use letters (Chinese too), "
        f"digits, - and _ only (got: {bad!r})"
    ) in joined
    assert (
        f"facility type names may use letters (Chinese too), digits, - and _ only (got: [{bad!r}])"
    ) in joined
    assert not is_name(bad)
    assert is_name("home_2-b")


@pytest.mark.parametrize("name", ["宁波-2026", "养老机构", "镇级_2", "home"])
def test_chinese_names_are_names(name):
    data = base()
    data["name"] = name
    data["facilities"][name] = data["facilities"].pop("home")
    scenario = scenario_from_dict(data, source="s.yaml")
    assert scenario.name == name and list(scenario.facilities) == [name]


@pytest.mark.parametrize("name", ["CON", "nul", "Com1"])
def test_windows_device_names_are_refused(name):
    data = base()
    data["name"] = name
    assert any("is a device name on Windows" in p for p in problems_of(data))


def test_tier_names_match_as_a_whole():
    data = base()
    home = data["facilities"]["home"]
    home["candidates"]["tier"] = "tier"
    home["tiers"] = {"town\n": {"radius_m": 500}, "village": {}}
    joined = "\n".join(problems_of(data))
    assert (
        "s.yaml → facilities.home.tiers: tier names may use letters (Chinese too), digits, "
        "- and _ only" in joined
    )
    assert "(got: ['town\\n'])" in joined


@pytest.mark.parametrize(
    "bad", ["two\nlines", "a\rb", "tab\there", "nul\x00", "c1\x9b", "ls\u2028"]
)
def test_title_refuses_control_characters(bad):
    data = base()
    data["title"] = bad
    assert problems_of(data) == [
        "s.yaml → title: the title is one line of text: no line breaks, tabs or other control "
        f"characters (they would break the reports' Markdown) (got: {bad!r})"
    ]


def test_title_may_hold_any_printable_text():
    data = base()
    data["title"] = "示例：三个区的养老机构 [draft] *2026* <b>&amp; — ok"
    assert scenario_from_dict(data).title == data["title"]


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, "1e999", "inf", "NaN"])
def test_non_finite_floats_refused(bad):
    data = base()
    data["facilities"]["home"]["radius_m"] = bad
    data["solver"] = {"time_limit_s": bad}
    data["constraints"] = {"budget": bad}
    joined = "\n".join(problems_of(data))
    for key in ("facilities.home.radius_m", "solver.time_limit_s", "constraints.budget"):
        assert f"s.yaml → {key}: Input should be a finite number (got: {bad!r})" in joined
