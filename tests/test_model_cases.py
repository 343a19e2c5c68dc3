"""Hand-computed instances, one per constraint kind, solved through the whole pipeline.

The points lie on a line (metres). Demand: A(0) w5, B(1000) w3, C(2000) w4, D(5000) w6.
Candidates: s1 at 500 reaches A, B (8); s2 at 1500 reaches B, C (7); s3 at 5000 reaches D (6)
— all with radius 600. Each test derives its optimum in a comment.
"""

from __future__ import annotations

import pytest

from carecheck import InfeasibleError, run_scenario

DEMAND = [
    {"id": "A", "x": 0, "y": 0, "w": 5, "region": "north"},
    {"id": "B", "x": 1000, "y": 0, "w": 3, "region": "north"},
    {"id": "C", "x": 2000, "y": 0, "w": 4, "region": "south"},
    {"id": "D", "x": 5000, "y": 0, "w": 6, "region": "south"},
]


def site(id_: str, x: float, **attrs) -> dict:
    return {"id": id_, "x": x, "y": 0, **attrs}


S1, S2, S3 = site("s1", 500), site("s2", 1500), site("s3", 5000)


def solve(path, solver="cbc"):
    result = run_scenario(path, write=False, solver=solver)
    assert result.verification.ok, result.verification.problems
    opened = {
        t: sorted(result.selected.loc[result.selected["type"] == t, "id"])
        for t in result.scenario.facilities
    }
    return result, opened


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_exact_count(make_case, solver):
    # p=1: s1 8 > s2 7 > s3 6.  p=2: s1+s3 = 14 > s2+s3 = 13 > s1+s2 = 12.
    path = make_case(DEMAND, {"home": {"radius_m": 600, "count": 1, "candidates": [S1, S2, S3]}})
    result, opened = solve(path, solver)
    assert (result.objective, opened["home"]) == (8, ["s1"])
    path = make_case(DEMAND, {"home": {"radius_m": 600, "count": 2, "candidates": [S1, S2, S3]}})
    result, opened = solve(path, solver)
    assert (result.objective, opened["home"]) == (14, ["s1", "s3"])
    assert result.coverage["types"]["home"] == {"covered_before": 0.0, "covered_after": 14.0}


def test_reach_is_inclusive(make_case):
    # s at 300 with radius 300 reaches A (d=300, on the boundary) but not B (d=700)
    path = make_case(
        DEMAND, {"home": {"radius_m": 300, "count": 1, "candidates": [site("s", 300)]}}
    )
    result, _ = solve(path)
    assert result.objective == 5


def test_existing_coverage_is_a_constant(make_case):
    # An existing home at 0 (radius 600) covers A (5). Then s1 adds B: 8; s2 adds B, C: 12;
    # s3 adds D: 11.  Optimum: s2, objective 12 (the 5 already covered included).
    path = make_case(
        DEMAND,
        {
            "home": {
                "radius_m": 600,
                "count": 1,
                "candidates": [S1, S2, S3],
                "existing": [site("e", 0)],
            }
        },
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (12, ["s2"])
    assert result.coverage["types"]["home"] == {"covered_before": 5.0, "covered_after": 12.0}
    new = result.selected.set_index("id")["new_covered_weight"]
    assert new["s2"] == 7


def test_tier_radii_and_tier_counts(make_case):
    # town reach 1600, village reach 600. s1 (village, 500) reaches A, B: 8.
    # s4 (town, 3500) reaches C (d=1500) and D (d=1500): 10; as a village it would reach none.
    cands = [site("s1", 500, tier="village"), site("s4", 3500, tier="town")]
    tiers = {"town": {"radius_m": 1600}, "village": {"radius_m": 600}}
    path = make_case(DEMAND, {"home": {"count": 1, "tiers": tiers, "candidates": cands}})
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (10, ["s4"])
    # forbid towns: the village site is the only choice, 8
    tiers = {"town": {"radius_m": 1600, "count": 0}, "village": {"radius_m": 600}}
    path = make_case(DEMAND, {"home": {"count": 1, "tiers": tiers, "candidates": cands}})
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (8, ["s1"])


def test_tiers_without_type_count_open_sum_of_tier_counts(make_case):
    # one town and one village: s4 (10) + s1 (8) = 18 (all demand)
    cands = [
        site("s1", 500, tier="village"),
        site("s2", 1500, tier="village"),
        site("s4", 3500, tier="town"),
    ]
    tiers = {"town": {"radius_m": 1600, "count": 1}, "village": {"radius_m": 600, "count": 1}}
    path = make_case(DEMAND, {"home": {"tiers": tiers, "candidates": cands}})
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (18, ["s1", "s4"])


def test_budget(make_case):
    # costs s1 5, s2 3, s3 4; budget 7; at most 3 sites. Affordable: s1 (8), s2+s3 (13),
    # s2 (7), s3 (6). s1+s2 costs 8, s1+s3 costs 9. Optimum s2+s3: 13.
    cands = [site("s1", 500, cost=5), site("s2", 1500, cost=3), site("s3", 5000, cost=4)]
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "max_count": 3, "candidates": cands}},
        constraints={"budget": 7},
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (13, ["s2", "s3"])
    assert result.total_cost == 7


def test_min_and_max_count(make_case):
    # min_count 2, max_count 2 behaves like count 2: 14
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "min_count": 2, "max_count": 2, "candidates": [S1, S2, S3]}},
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (14, ["s1", "s3"])
    # max_count 3 without a budget opens all three: 18
    path = make_case(
        DEMAND, {"home": {"radius_m": 600, "max_count": 3, "candidates": [S1, S2, S3]}}
    )
    result, _ = solve(path)
    assert result.objective == 18


def test_region_min_sites_keeps_a_useless_site(make_case):
    # s5 (north) reaches nothing; s1, s2, s3 are in the south. Two sites, at least one per
    # region: s5 is forced, plus the best single other site s1 (8). Unconstrained: 14.
    cands = [
        site("s1", 500, region="south"),
        site("s2", 1500, region="south"),
        site("s3", 5000, region="south"),
        site("s5", -3000, region="north"),
    ]
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 2, "candidates": cands}},
        constraints={"region_min_sites": {"home": 1}},
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (8, ["s1", "s5"])
    # per-region form: only the south needs one → the unconstrained optimum s1 + s3 (14)
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 2, "candidates": cands}},
        constraints={"region_min_sites": {"home": {"south": 1}}},
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (14, ["s1", "s3"])


def test_region_min_coverage(make_case):
    # one site; the south (C 4 + D 6 = 10) must be ≥ 50 % covered: s2 gives 4 (40 %),
    # s3 gives 6 (60 %). So s3 (objective 6), although s1 alone would cover 8.
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 1, "candidates": [S1, S2, S3]}},
        constraints={"region_min_coverage": {"home": {"south": 0.5}}},
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (6, ["s3"])


def test_objective_weights_between_types(make_case):
    # a1 covers A, B (8), b1 covers D (6); budget 5 allows one of them (cost 5 each).
    # With weight 2 on type b: b1 scores 12 > 8.
    path = make_case(
        DEMAND,
        {
            "a": {"radius_m": 600, "max_count": 1, "candidates": [site("a1", 500, cost=5)]},
            "b": {"radius_m": 600, "max_count": 1, "candidates": [site("b1", 5000, cost=5)]},
        },
        objective={"kind": "max_coverage", "weights": {"b": 2}},
        constraints={"budget": 5},
    )
    result, opened = solve(path)
    assert opened == {"a": [], "b": ["b1"]}
    assert result.objective == 12


# --------------------------------------------------------------------------- infeasible


def diagnosis_of(path) -> str:
    with pytest.raises(InfeasibleError) as info:
        run_scenario(path, write=False)
    return "\n".join(info.value.diagnosis)


def test_infeasible_count(make_case):
    path = make_case(DEMAND, {"home": {"radius_m": 600, "count": 5, "candidates": [S1, S2, S3]}})
    text = diagnosis_of(path)
    assert "relax facilities.home count (exactly 5)" in text
    assert "3 candidate(s) exist" in text


def test_infeasible_budget_names_cheapest_plan(make_case):
    # two sites must open; the cheapest pair is s2 + s3 = 7 > budget 6
    cands = [site("s1", 500, cost=5), site("s2", 1500, cost=3), site("s3", 5000, cost=4)]
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 2, "candidates": cands}},
        constraints={"budget": 6},
    )
    text = diagnosis_of(path)
    assert "constraints.budget (6)" in text
    assert "cheapest plan meeting the other constraints costs 7" in text


def test_infeasible_region_min_sites_names_region(make_case):
    cands = [site("s1", 500, region="south"), site("s2", 1500, region="south")]
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 1, "candidates": cands}},
        constraints={"region_min_sites": {"home": 1}},
    )
    text = diagnosis_of(path)
    assert "constraints.region_min_sites.home" in text
    assert "region north needs 1 site(s) and has 0 candidate(s)" in text


def test_infeasible_region_min_coverage_names_region(make_case):
    # one site cannot reach half of both regions: north needs s1, south needs s3
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 1, "candidates": [S1, S2, S3]}},
        constraints={"region_min_coverage": {"home": 0.5}},
    )
    text = diagnosis_of(path)
    assert "constraints.region_min_coverage.home" in text
    assert "region north" in text and "region south" in text


def test_min_beds_keeps_an_expansion_that_reaches_nobody_new(make_case):
    # An existing home at 0 covers A. x (an expansion at 0, 100 beds) reaches nobody new;
    # s1, s2, s3 add 10 beds each. Two sites and ≥ 100 new beds: x is forced, plus the best
    # other site: s2 adds B, C (7) → 5 + 7 = 12. Without the bed minimum: s2 + s3 → 18.
    cands = [
        site("x", 0, beds=100, action="expand"),
        site("s1", 500, beds=10),
        site("s2", 1500, beds=10),
        site("s3", 5000, beds=10),
    ]
    facility = {
        "home": {"radius_m": 600, "count": 2, "candidates": cands, "existing": [site("e", 0)]}
    }
    result, opened = solve(make_case(DEMAND, facility, constraints={"min_beds": {"home": 100}}))
    assert (result.objective, opened["home"]) == (12, ["s2", "x"])
    result, opened = solve(make_case(DEMAND, facility))
    assert (result.objective, opened["home"]) == (18, ["s2", "s3"])


def test_infeasible_min_beds(make_case):
    cands = [site("s1", 500, beds=10), site("s2", 1500, beds=10)]
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "max_count": 2, "candidates": cands}},
        constraints={"min_beds": {"home": 50}},
    )
    text = diagnosis_of(path)
    assert "constraints.min_beds.home (50): all 2 candidates together add 20 beds" in text


def test_linked_tiers_village_needs_a_town_nearby(make_case):
    # v1 (village, 500) reaches A, B (8) but counts only with a town site within 1,500 m;
    # t1 (town, 5000) reaches D (6); t2 (town, 1500) reaches B, C (7). One of each tier:
    # v1 + t1 → v1 has no town within 1,500 m, so only D counts: 6.
    # v1 + t2 → t2 is 1,000 m from v1: A, B, C = 12.  Optimum 12 (unlinked it would be 14).
    tiers = {
        "town": {"radius_m": 600, "count": 1},
        "village": {"radius_m": 600, "count": 1, "referral": {"tiers": ["town"], "within_m": 1500}},
    }
    cands = [
        site("v1", 500, tier="village"),
        site("t1", 5000, tier="town"),
        site("t2", 1500, tier="town"),
    ]
    result, opened = solve(make_case(DEMAND, {"home": {"tiers": tiers, "candidates": cands}}))
    assert (result.objective, opened["home"]) == (12, ["t2", "v1"])
    # an existing town home at 0 refers v1 for good: v1 + t1 → A (existing), B, D = 14
    facility = {
        "home": {"tiers": tiers, "candidates": cands, "existing": [site("e", 0, tier="town")]}
    }
    result, opened = solve(make_case(DEMAND, facility))
    assert (result.objective, opened["home"]) == (14, ["t1", "v1"])


def test_linked_tier_site_forced_open_without_referral_does_not_count(make_case):
    # two villages must open, only one town: the town t2 (1500) refers v1 (500, 1,000 m away)
    # but not v3 (4800, 3,300 m away); v3 opens yet covers nothing: A, B, C = 12
    tiers = {
        "town": {"radius_m": 600, "count": 1},
        "village": {"radius_m": 600, "count": 2, "referral": {"tiers": ["town"], "within_m": 1500}},
    }
    cands = [
        site("v1", 500, tier="village"),
        site("v3", 4800, tier="village"),
        site("t2", 1500, tier="town"),
    ]
    result, opened = solve(make_case(DEMAND, {"home": {"tiers": tiers, "candidates": cands}}))
    assert (result.objective, opened["home"]) == (12, ["t2", "v1", "v3"])
    assert result.selected.set_index("id").loc["v3", "new_covered_weight"] == 0


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_capacitated_coverage(make_case, solver):
    # need = weight (1,000 per 1,000): A 5, B 3, C 4, D 6. Beds: s1 (A, B) 4, s2 (B, C) 10,
    # s3 (D) 6. One site: s1 serves 4 (its beds), s2 serves B + C = 7, s3 serves 6 → s2: 7.
    # Two sites: s2 + s3 = 13; s1 + s2 = 4 + 7 = 11; s1 + s3 = 10 → 13.
    cands = [site("s1", 500, beds=4), site("s2", 1500, beds=10), site("s3", 5000, beds=6)]
    capacitated = {"objective": "capacitated", "beds": {"per_1000": 1000}}
    path = make_case(
        DEMAND, {"home": {"radius_m": 600, "count": 1, "candidates": cands}}, **capacitated
    )
    result, opened = solve(path, solver)
    assert opened["home"] == ["s2"]
    assert result.objective == pytest.approx(7)
    assert result.beds["served_after"] == pytest.approx(7, abs=0.01)
    assert result.beds["unmet_after"] == pytest.approx(11, abs=0.01)
    path = make_case(
        DEMAND, {"home": {"radius_m": 600, "count": 2, "candidates": cands}}, **capacitated
    )
    result, opened = solve(path, solver)
    assert opened["home"] == ["s2", "s3"] and result.objective == pytest.approx(13)


def test_capacitated_with_existing_beds(make_case):
    # an existing home at 0 with 5 beds serves A (5). One more site: s1 adds B (3 of its 4
    # beds) → 8; s2 adds B + C → 12; s3 adds D → 11. So s2: 12; before the plan: 5.
    cands = [site("s1", 500, beds=4), site("s2", 1500, beds=10), site("s3", 5000, beds=6)]
    existing = [site("e", 0, beds=5)]
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 1, "candidates": cands, "existing": existing}},
        objective="capacitated",
        beds={"per_1000": 1000, "nursing_share": 0.5},
    )
    result, opened = solve(path)
    assert opened["home"] == ["s2"] and result.objective == pytest.approx(12)
    beds = result.beds
    assert beds["served_before"] == pytest.approx(5, abs=0.01)
    assert beds["beds_before"] == 5 and beds["beds_after"] == 15
    assert beds["nursing_need"] == pytest.approx(9)
    assert beds["beds_per_1000_after"] == pytest.approx(1000 * 15 / 18)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_min_distance_p_median(make_case, solver):
    # weighted distances (A 5 at 0, B 3 at 1000, C 4 at 2000, D 6 at 5000):
    # p = 1: s1 (500) 2500+1500+6000+27000 = 37000; s2 (1500) 7500+1500+2000+21000 = 32000;
    #        s3 (5000) 25000+12000+12000+0 = 49000 → s2, 32000.
    # p = 2: s1+s3 2500+1500+6000+0 = 10000; s2+s3 7500+1500+2000 = 11000; s1+s2 27000 → 10000
    objective = {"kind": "min_distance"}
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 1, "candidates": [S1, S2, S3]}},
        objective=objective,
    )
    result, opened = solve(path, solver)
    assert (result.objective, opened["home"]) == (32000, ["s2"])
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 2, "candidates": [S1, S2, S3]}},
        objective=objective,
    )
    result, opened = solve(path, solver)
    assert (result.objective, opened["home"]) == (10000, ["s1", "s3"])


def test_min_distance_keeps_existing_and_max_distance(make_case):
    # an existing home at 0 caps each distance: A 0, B ≤ 1000, C ≤ 2000, D ≤ 5000.
    # p = 1: s1 34500, s2 0+1500+2000+21000 = 24500, s3 0+3000+8000+0 = 11000 → s3
    path = make_case(
        DEMAND,
        {
            "home": {
                "radius_m": 600,
                "count": 1,
                "candidates": [S1, S2, S3],
                "existing": [site("e", 0)],
            }
        },
        objective={"kind": "min_distance"},
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (11000, ["s3"])
    # no existing home, one site, everyone within 1,000 m: impossible (A and D are 5 km apart)
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 1, "candidates": [S1, S2, S3]}},
        objective={"kind": "min_distance", "max_distance_m": 1000},
    )
    with pytest.raises(InfeasibleError, match="infeasible"):
        run_scenario(path, write=False)
