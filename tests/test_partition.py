"""Reach and reductions in partitions agree exactly with the in-memory path.

Seeded clustered instances with mixed reach, points on a grid (so distances equal to a reach
occur), existing coverage, zero weights and regions (some points in none) are reduced twice:
in memory (``reach_matrix`` + ``reduce_type`` / ``reduce_problem``) and ``chunk`` points at a
time. Merged rows, weights, regions and the per-point mapping must be identical, and the
optimum through ``build_milp`` + ``solve_milp`` the same; every plan is checked against a
brute-force recount of coverage from the raw points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carecheck.partition as partition
from carecheck.coverage import covered_by, reach_matrix
from carecheck.model import (
    Bounds,
    Problem,
    TypeProblem,
    build_milp,
    reduce_problem,
    reduce_type,
    selection_from_solution,
)
from carecheck.partition import (
    MergedDemand,
    classes_from_merged,
    covered_in_partitions,
    reach_in_partitions,
)
from carecheck.solve import SolverOptions, solve_milp

GRID_M = 50.0  # snapped points and sites: distances like 250 (3-4-5) and 650 (5-12-13) m occur
RADII_M = (250.0, 500.0, 650.0)
OFFSET = np.array([500_000.0, 3_300_000.0])  # UTM-sized coordinates, as after projection
HIGHS = SolverOptions(name="highs")


@dataclass(frozen=True)
class Instance:
    demand_xy: np.ndarray
    weight: np.ndarray
    region: np.ndarray
    site_xy: np.ndarray
    site_reach: np.ndarray
    covered: np.ndarray


def clustered(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    town = rng.integers(0, len(centres), n)
    xy = centres[town] + rng.normal(size=(n, 2)) * rng.uniform(150, 700, len(centres))[town, None]
    snap = rng.random(n) < 0.4
    xy[snap] = np.round(xy[snap] / GRID_M) * GRID_M
    return xy + OFFSET


def instance(
    seed: int, n_points: int = 1_200, n_sites: int = 40, radii: tuple[float, ...] = RADII_M
) -> Instance:
    rng = np.random.default_rng(seed)
    centres = np.round(rng.uniform(0, 4_000, size=(5, 2)) / GRID_M) * GRID_M
    demand_xy = clustered(rng, n_points, centres)
    weight = np.round(rng.lognormal(1.0, 1.0, n_points), 2)
    weight[rng.random(n_points) < 0.1] = 0.0
    existing = clustered(rng, 3, centres)
    return Instance(
        demand_xy=demand_xy,
        weight=weight,
        region=rng.integers(-1, 3, n_points),  # -1: a point in no region
        site_xy=clustered(rng, n_sites, centres),
        site_reach=rng.choice(radii, n_sites),
        covered=covered_by(reach_matrix(demand_xy, existing, 400.0)),
    )


def single_type(inst: Instance, *, regional: bool) -> TypeProblem:
    n_sites = len(inst.site_xy)
    return TypeProblem(
        name="site",
        reach=reach_matrix(inst.demand_xy, inst.site_xy, inst.site_reach),
        covered_before=inst.covered,
        cost=np.ones(n_sites),
        tier=np.zeros(n_sites, dtype=np.int64),
        region=np.zeros(n_sites, dtype=np.int64),
        count=Bounds(3, 3),
        region_min_coverage={1: 0.2} if regional else {},
    )


def assert_same_rows(merged: MergedDemand, inst: Instance, *, regional: bool) -> None:
    """Row for row (same order), the rows, weights and mapping of ``model.reduce_type``."""
    tp = single_type(inst, regional=regional)
    expected = reduce_type(tp, inst.weight, inst.region, 3)
    assert merged.n_rows == len(expected.row_weight)
    assert (merged.reach[:, expected.candidates] != expected.reach).nnz == 0
    # only candidates reached by some row are "useful": no row reaches another column
    others = np.setdiff1d(np.arange(tp.n_candidates), expected.candidates)
    assert merged.reach[:, others].nnz == 0
    np.testing.assert_array_equal(merged.row_weight, expected.row_weight)
    np.testing.assert_array_equal(merged.row_region, expected.row_region)
    np.testing.assert_array_equal(merged.demand_rows, expected.demand_rows)
    assert merged.covered_before_weight == expected.covered_before_weight


# --------------------------------------------------------------------------- merged rows


@pytest.mark.parametrize("chunk", [1, 7, 250, 10**6])
@pytest.mark.parametrize("regional", [False, True], ids=["pooled", "by_region"])
def test_rows_equal_reduce_type(chunk, regional):
    inst = instance(11, n_points=500 if chunk == 1 else 1_200)
    merged = reach_in_partitions(
        inst.demand_xy,
        inst.weight,
        inst.site_xy,
        inst.site_reach,
        covered_before=inst.covered,
        chunk=chunk,
        region=inst.region if regional else None,
    )
    assert_same_rows(merged, inst, regional=regional)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chunk_sizes_agree(seed):
    inst = instance(seed, n_points=400)
    results = [
        reach_in_partitions(
            inst.demand_xy,
            inst.weight,
            inst.site_xy,
            inst.site_reach,
            covered_before=inst.covered,
            chunk=chunk,
            region=inst.region,
        )
        for chunk in (1, 7, 64, 400)
    ]
    first = results[0]
    for other in results[1:]:
        assert (other.reach != first.reach).nnz == 0
        np.testing.assert_array_equal(other.row_weight, first.row_weight)
        np.testing.assert_array_equal(other.row_region, first.row_region)
        np.testing.assert_array_equal(other.demand_rows, first.demand_rows)


def test_each_point_maps_to_its_own_reach_set():
    inst = instance(5)
    merged = reach_in_partitions(
        inst.demand_xy,
        inst.weight,
        inst.site_xy,
        inst.site_reach,
        covered_before=inst.covered,
        chunk=100,
        region=inst.region,
    )
    distance = np.linalg.norm(inst.demand_xy[:, None, :] - inst.site_xy[None, :, :], axis=2)
    within = distance <= inst.site_reach[None, :]  # brute force, independent of KD-trees
    rows = merged.demand_rows
    kept = rows >= 0
    np.testing.assert_array_equal(merged.reach.toarray()[rows[kept]], within[kept])
    np.testing.assert_array_equal(merged.row_region[rows[kept]], inst.region[kept])
    dropped = inst.covered | (inst.weight == 0) | ~within.any(axis=1)
    np.testing.assert_array_equal(kept, ~dropped)
    assert merged.row_weight.sum() == pytest.approx(inst.weight[kept].sum())
    assert rows.dtype == np.int32


def test_reach_is_inclusive_at_the_boundary():
    sites = np.array([[0.0, 0.0]]) + OFFSET
    points = np.array([[300.0, 400.0], [500.0, 0.0], [500.0, 1e-3], [0.0, 0.0]]) + OFFSET
    merged = reach_in_partitions(points, np.ones(4), sites, 500.0, chunk=2)
    np.testing.assert_array_equal(merged.demand_rows, [0, 0, -1, 0])
    np.testing.assert_array_equal(merged.row_weight, [3.0])


def test_hash_collisions_are_split_exactly(monkeypatch):
    """With every site key zero all rows of a region collide; the exact check splits them."""

    def zero_keys(n_sites: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(n_sites, dtype=np.uint64), np.zeros(n_sites, dtype=np.uint64)

    split = partition._split_collisions
    calls = []

    def counted(*args):
        calls.append(1)
        return split(*args)

    monkeypatch.setattr(partition, "_site_keys", zero_keys)
    monkeypatch.setattr(partition, "_split_collisions", counted)
    inst = instance(8, n_points=600)
    for chunk in (1, 50, 600):
        merged = reach_in_partitions(
            inst.demand_xy,
            inst.weight,
            inst.site_xy,
            inst.site_reach,
            covered_before=inst.covered,
            chunk=chunk,
            region=inst.region,
        )
        assert_same_rows(merged, inst, regional=True)
    assert calls  # the collisions did happen and were split


@st.composite
def small_instances(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_points = draw(st.integers(0, 40))
    n_sites = draw(st.integers(0, 6))
    demand_xy = np.round(rng.uniform(0, 1_000, size=(n_points, 2)) / 100) * 100
    site_xy = np.round(rng.uniform(0, 1_000, size=(n_sites, 2)) / 100) * 100
    return Instance(
        demand_xy=demand_xy,
        weight=rng.integers(0, 4, n_points).astype(float),
        region=rng.integers(-1, 2, n_points),
        site_xy=site_xy,
        site_reach=rng.choice([0.0, 300.0, 500.0], n_sites),
        covered=rng.random(n_points) < 0.2,
    )


@given(inst=small_instances(), chunk=st.integers(1, 50), regional=st.booleans())
@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
def test_rows_equal_reduce_type_on_small_instances(inst, chunk, regional):
    merged = reach_in_partitions(
        inst.demand_xy,
        inst.weight,
        inst.site_xy,
        inst.site_reach,
        covered_before=inst.covered,
        chunk=chunk,
        region=inst.region if regional else None,
    )
    assert merged.reach.shape == (merged.n_rows, len(inst.site_xy))
    assert_same_rows(merged, inst, regional=regional)


def test_covered_in_partitions_matches_reach_matrix():
    inst = instance(4)
    expected = covered_by(reach_matrix(inst.demand_xy, inst.site_xy, inst.site_reach))
    for chunk in (1, 33, 5_000):
        got = covered_in_partitions(inst.demand_xy, inst.site_xy, inst.site_reach, chunk=chunk)
        np.testing.assert_array_equal(got, expected)
    assert not covered_in_partitions(inst.demand_xy, np.zeros((0, 2)), 100.0).any()


def test_empty_inputs():
    merged = reach_in_partitions(np.zeros((0, 2)), np.zeros(0), np.ones((3, 2)), 10.0)
    assert merged.reach.shape == (0, 3)
    assert merged.covered_before_weight == 0.0
    no_sites = reach_in_partitions(np.ones((4, 2)), np.ones(4), np.zeros((0, 2)), 10.0)
    assert no_sites.reach.shape == (0, 0)
    np.testing.assert_array_equal(no_sites.demand_rows, [-1] * 4)


# --------------------------------------------------------------------------- the optimum


def two_type_problem(inst: Instance, other_reach: np.ndarray) -> Problem:
    """Day care (three reaches, a regional coverage floor) and homes (budget, region quota)."""
    n_sites = len(inst.site_xy)
    rng = np.random.default_rng(0)
    site_region = rng.integers(0, 3, n_sites)
    day = TypeProblem(
        name="day",
        reach=reach_matrix(inst.demand_xy, inst.site_xy, inst.site_reach),
        covered_before=inst.covered,
        cost=rng.integers(1, 4, n_sites).astype(float),
        tier=(inst.site_reach > 300).astype(np.int64),
        region=site_region,
        tier_names=("small", "large"),
        count=Bounds(4, 4),
        tier_counts={0: Bounds(1, None)},
        region_min_coverage={0: 0.15, 2: 0.1},
    )
    home = TypeProblem(
        name="home",
        reach=reach_matrix(inst.demand_xy, inst.site_xy, other_reach),
        covered_before=np.zeros(len(inst.weight), dtype=bool),
        cost=rng.integers(2, 6, n_sites).astype(float),
        tier=np.full(n_sites, -1),
        region=site_region,
        alpha=0.5,
        count=Bounds(1, 3),
        region_min_sites={1: 1},
    )
    return Problem(
        weight=inst.weight,
        types=(day, home),
        region=inst.region,
        region_names=("r0", "r1", "r2"),
        budget=18.0,
    )


def class_problem(
    problem: Problem, inst: Instance, reaches: list[np.ndarray], chunk: int
) -> tuple[Problem, partition.DemandClasses]:
    """The pipeline's partitioned path: merged demand per type → classes → class problem."""
    merged = [
        reach_in_partitions(
            inst.demand_xy,
            inst.weight,
            inst.site_xy,
            site_reach,
            covered_before=np.asarray(tp.covered_before),
            chunk=chunk,
            region=inst.region if tp.region_min_coverage else None,
        )
        for tp, site_reach in zip(problem.types, reaches, strict=True)
    ]
    classes = classes_from_merged(merged, inst.weight, region=inst.region)
    types = tuple(
        replace(tp, reach=classes.reach[k], covered_before=classes.covered_before[k])
        for k, tp in enumerate(problem.types)
    )
    return replace(problem, weight=classes.weight, types=types, region=classes.region), classes


def brute_force_objective(
    problem: Problem, inst: Instance, reaches: list[np.ndarray], opened: list[np.ndarray]
) -> float:
    """Σ_t α_t · weight covered, recounted from raw coordinates and plain distances."""
    total = 0.0
    for tp, site_reach, sites in zip(problem.types, reaches, opened, strict=True):
        distance = np.linalg.norm(inst.demand_xy[:, None, :] - inst.site_xy[None, sites, :], axis=2)
        reached = (distance <= site_reach[sites][None, :]).any(axis=1)
        total += tp.alpha * float(inst.weight[reached | np.asarray(tp.covered_before)].sum())
    return total


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_same_optimum_as_in_memory(seed):
    inst = instance(seed, n_points=1_500, n_sites=30)
    home_reach = np.full(len(inst.site_xy), 700.0)
    reaches = [inst.site_reach, home_reach]
    problem = two_type_problem(inst, home_reach)
    in_memory = reduce_problem(problem)
    expected = solve_milp(build_milp(in_memory), HIGHS)
    assert expected.status == "optimal"

    for chunk in (7, 400, 10**6):
        small, _ = class_problem(problem, inst, reaches, chunk)
        reduced = reduce_problem(small)  # as the pipeline does
        for rt, full in zip(reduced.types, in_memory.types, strict=True):
            np.testing.assert_array_equal(rt.candidates, full.candidates)
            assert rt.covered_before_weight == pytest.approx(full.covered_before_weight, rel=1e-12)
            np.testing.assert_allclose(rt.covered_before_by_region, full.covered_before_by_region)
        np.testing.assert_allclose(reduced.weight_by_region, in_memory.weight_by_region)
        outcome = solve_milp(build_milp(reduced), HIGHS)
        assert outcome.status == "optimal"
        assert outcome.objective == pytest.approx(expected.objective, rel=1e-9)
        opened = selection_from_solution(reduced, outcome.values)
        recount = brute_force_objective(problem, inst, reaches, opened)
        assert recount == pytest.approx(outcome.objective, rel=1e-9)


def test_classes_map_points_consistently():
    inst = instance(31, n_points=1_000)
    other = np.full(len(inst.site_xy), 700.0)
    merged = [
        reach_in_partitions(
            inst.demand_xy,
            inst.weight,
            inst.site_xy,
            inst.site_reach,
            covered_before=inst.covered,
            chunk=90,
            region=inst.region,
        ),
        reach_in_partitions(inst.demand_xy, inst.weight, inst.site_xy, other, chunk=90),
    ]
    classes = classes_from_merged(merged, inst.weight, region=inst.region)
    point_class = classes.demand_class
    present = inst.weight != 0
    np.testing.assert_array_equal(point_class >= 0, present)
    np.testing.assert_allclose(
        classes.weight, np.bincount(point_class[present], weights=inst.weight[present])
    )
    np.testing.assert_array_equal(classes.region[point_class[present]], inst.region[present])
    for k, m in enumerate(merged):
        # a point's class has the point's merged row and covered state in every type
        np.testing.assert_array_equal(classes.rows[k][point_class[present]], m.demand_rows[present])
        np.testing.assert_array_equal(
            classes.covered_before[k][point_class[present]], m.covered_before[present]
        )
        has_row = classes.rows[k] >= 0
        assert (classes.reach[k][has_row] != m.reach[classes.rows[k][has_row]]).nnz == 0
        assert classes.reach[k][~has_row].nnz == 0
    # classes are distinct: no two share every row, covered state and region
    signature = np.column_stack(
        [classes.region, *classes.rows, *(c.astype(int) for c in classes.covered_before)]
    )
    assert len(np.unique(signature, axis=0)) == classes.n_classes


# --------------------------------------------------------------------------- errors


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="weight: every demand weight must be finite and ≥ 0"):
        reach_in_partitions(np.zeros((2, 2)), [1.0, -1.0], np.zeros((1, 2)), 10.0)
    with pytest.raises(ValueError, match="finite"):
        reach_in_partitions(np.zeros((2, 2)), [1.0, np.nan], np.zeros((1, 2)), 10.0)


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("covered_before", np.zeros(3, dtype=bool), r"covered_before has shape \(3,\)"),
        ("region", np.zeros(1, dtype=int), r"region has shape \(1,\); expected .* \(2,\)"),
        ("chunk", 0, "chunk must be a positive number of points, got 0"),
    ],
)
def test_bad_arguments_are_refused(keyword, value, message):
    with pytest.raises(ValueError, match=message):
        reach_in_partitions(np.zeros((2, 2)), np.ones(2), np.zeros((1, 2)), 1.0, **{keyword: value})


def test_site_reach_must_match_the_sites():
    with pytest.raises(ValueError, match=r"site_reach has shape \(2,\); expected one value per"):
        reach_in_partitions(np.zeros((2, 2)), np.ones(2), np.zeros((3, 2)), [1.0, 2.0])


def test_classes_when_everything_is_covered_before():
    xy = np.array([[0.0, 0.0], [5.0, 0.0], [9.0, 9.0]])
    weight = np.array([1.0, 0.0, 2.0])
    covered = np.array([True, True, False])
    merged = reach_in_partitions(
        xy, weight, np.array([[100.0, 100.0]]), 1.0, covered_before=covered
    )
    assert merged.n_rows == 0
    classes = classes_from_merged([merged], weight)
    np.testing.assert_array_equal(classes.demand_class, [0, -1, 1])
    np.testing.assert_array_equal(classes.weight, [1.0, 2.0])
    np.testing.assert_array_equal(classes.covered_before[0], [True, False])
    assert classes.reach[0].shape == (2, 1)
    assert classes.reach[0].nnz == 0


def test_bad_weight_shape_and_chunk_in_covered():
    with pytest.raises(ValueError, match=r"weight has shape \(3,\); expected one value"):
        reach_in_partitions(np.zeros((2, 2)), np.ones(3), np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="chunk must be a positive number of points, got -1"):
        covered_in_partitions(np.zeros((2, 2)), np.zeros((1, 2)), 1.0, chunk=-1)


def test_classes_need_matching_types():
    one = reach_in_partitions(np.zeros((2, 2)), np.ones(2), np.zeros((1, 2)), 1.0)
    three = reach_in_partitions(np.zeros((3, 2)), np.ones(3), np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="at least one facility type"):
        classes_from_merged([], np.ones(2))
    with pytest.raises(ValueError, match=r"merged\[1\] has 3 demand points, merged\[0\] has 2"):
        classes_from_merged([one, three], np.ones(2))


def _tiny() -> tuple[Problem, partition.DemandClasses]:
    xy = np.array([[0.0, 0.0], [5.0, 0.0], [50.0, 0.0]])
    weight = np.array([1.0, 2.0, 3.0])
    merged = reach_in_partitions(xy, weight, np.zeros((1, 2)), 10.0)
    classes = classes_from_merged([merged], weight)
    tp = TypeProblem(
        name="site",
        reach=classes.reach[0],
        covered_before=classes.covered_before[0],
        cost=np.ones(1),
        tier=np.zeros(1, dtype=np.int64),
        region=np.zeros(1, dtype=np.int64),
        count=Bounds(1, 1),
    )
    problem = Problem(weight=classes.weight, types=(tp,), region_names=("r0",))
    return problem, classes


def test_class_reach_is_sparse():
    _, classes = _tiny()
    assert sp.issparse(classes.reach[0])
    assert classes.reach[0].shape == (classes.n_classes, 1)
