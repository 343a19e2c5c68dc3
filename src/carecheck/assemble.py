"""Scenario + layers → the array problem: reach matrices, counts, tiers, regions, referral
links and beds per type (in partitions for large demand layers), and the solver settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from carecheck import objectives, schema
from carecheck.config import FacilitySpec, Scenario
from carecheck.coverage import covered_by, reach_matrix
from carecheck.data import Layers, xy
from carecheck.errors import ScenarioError
from carecheck.model import Bounds, Problem, TypeProblem
from carecheck.network import Snap, network_reach, snap_points
from carecheck.partition import classes_from_merged, covered_in_partitions, reach_in_partitions
from carecheck.solve import SolverOptions
from carecheck.verify import Roads

Progress = Callable[[str], None]


def _region_codes(values: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    index = {name: k for k, name in enumerate(names)}
    return np.array([index.get(v, -1) if v is not None else -1 for v in values], dtype=np.int64)


def _per_region(setting: int | float | dict, names: tuple[str, ...], key: str) -> dict[int, float]:
    if isinstance(setting, dict):
        unknown = [r for r in setting if r not in names]
        if unknown:
            raise ScenarioError(
                [
                    f"constraints.{key}: unknown region(s) {unknown}; regions in the demand "
                    f"layer are {list(names)}"
                ]
            )
        return {names.index(r): v for r, v in setting.items()}
    return dict.fromkeys(range(len(names)), setting)


def travel_modes(sites: pd.DataFrame) -> np.ndarray:
    """Travel mode per site ("" when the reach is not a travel time; robust to NaN)."""
    return np.array([m if isinstance(m, str) else "" for m in sites["reach_mode"]], dtype=object)


class _ReachContext:
    """Reach of any site layer: straight line by KD-tree, or along the network."""

    def __init__(
        self, scenario: Scenario, layers: Layers, demand_xy: np.ndarray, tree: cKDTree | None
    ) -> None:
        self.scenario = scenario
        self.layers = layers
        self.demand_xy = demand_xy
        self.tree = tree
        self._demand_snap: Snap | None = None

    @property
    def demand_snap(self) -> Snap:
        if self._demand_snap is None:
            assert self.layers.network is not None
            self._demand_snap = snap_points(self.layers.network, self.demand_xy)
        return self._demand_snap

    def reach(self, sites: pd.DataFrame) -> sp.csr_matrix:
        n_demand, n_sites = len(self.demand_xy), len(sites)
        kinds = sites["reach_kind"].to_numpy(object)
        modes = travel_modes(sites)
        values = sites["reach_value"].to_numpy(float)
        site_xy = xy(sites)
        rows, cols = [], []
        for kind, mode in sorted({(k, m or "") for k, m in zip(kinds, modes, strict=True)}):
            members = np.flatnonzero((kinds == kind) & (np.array([m or "" for m in modes]) == mode))
            if kind == "radius_m":
                block = reach_matrix(
                    self.demand_xy, site_xy[members], values[members], demand_tree=self.tree
                )
            else:
                network = self.layers.network
                assert network is not None and self.scenario.network is not None
                block = network_reach(
                    network,
                    self.demand_snap,
                    snap_points(network, site_xy[members]),
                    values[members],
                    kind=kind,
                    mode=mode or "walk",
                    walk_m_per_min=self.scenario.network.walk_m_per_min,
                    max_snap_m=self.scenario.network.max_snap_m,
                )
            coo = block.tocoo()
            rows.append(coo.row)
            cols.append(members[coo.col])
        if not rows:
            return sp.csr_matrix((n_demand, n_sites), dtype=bool)
        row, col = np.concatenate(rows), np.concatenate(cols)
        return sp.csr_matrix(
            (np.ones(len(row), bool), (row, col)), shape=(n_demand, n_sites), dtype=bool
        )


def referral_of(spec: FacilitySpec, cand: pd.DataFrame, existing: pd.DataFrame) -> dict:
    """Linked tiers: which candidates count only with a referral site, and which may refer.

    A candidate whose tier has a referral rule is satisfied for good when an existing facility
    of a referring tier lies within the referral distance; otherwise it needs an opened one.
    """
    rules = {t: ts.referral for t, ts in (spec.tiers or {}).items() if ts.referral is not None}
    if not rules:
        return {}
    n = len(cand)
    tiers = cand["tier"].to_numpy(object)
    cand_xy, existing_xy = xy(cand), xy(existing)
    existing_tiers = existing["tier"].to_numpy(object)
    needs = np.zeros(n, dtype=bool)
    rows: list[int] = []
    cols: list[int] = []
    for tier, rule in rules.items():
        members = np.flatnonzero(tiers == tier)
        if not len(members):
            continue
        referring = np.isin(existing_tiers, rule.tiers)
        satisfied = np.zeros(len(members), dtype=bool)
        if referring.any():
            near = cKDTree(existing_xy[referring]).query(cand_xy[members], k=1)[0]
            satisfied = near <= rule.within_m
        needy = members[~satisfied]
        needs[needy] = True
        providers = np.flatnonzero(np.isin(tiers, rule.tiers))
        if len(needy) and len(providers):
            found = cKDTree(cand_xy[providers]).query_ball_point(cand_xy[needy], r=rule.within_m)
            for j, hits in zip(needy, found, strict=True):
                rows += [int(j)] * len(hits)
                cols += providers[np.asarray(hits, dtype=np.int64)].tolist()
    referral = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n, n), dtype=bool)
    return {"needs_referral": needs, "referral": referral}


# Demand layers with more points than this are reached and merged PARTITION_CHUNK points at a
# time (carecheck.partition): the problem's demand units are then classes of points.


PARTITION_ABOVE = 500_000


PARTITION_CHUNK = 200_000


def partitioned(scenario: Scenario, layers: Layers) -> bool:
    """Whether the problem is built in partitions: a large demand layer, straight-line reach
    only, and not the capacitated objective (bed assignment needs the full reach)."""
    if (
        len(layers.demand) <= PARTITION_ABOVE
        or not objectives.get(scenario.objective.kind).partitionable
    ):
        return False
    frames = [f for fl in layers.facilities.values() for f in (fl.candidates, fl.existing)]
    return all((frame["reach_kind"] == "radius_m").all() for frame in frames)


def problem_from_layers(
    scenario: Scenario, layers: Layers, *, progress: Progress | None = None
) -> tuple[Problem, list[sp.csr_matrix]]:
    """The array problem of a scenario, plus each type's reach matrix of existing facilities.

    A large demand layer (see :func:`partitioned`) gives a problem over demand classes — points
    with the same reach set in every type, covered-before state and region, weights summed —
    which has the same optimum; the existing reach matrices are then not built (empty list).
    """
    demand = layers.demand
    demand_xy = xy(demand)
    weight = demand["weight"].to_numpy(float)
    split = partitioned(scenario, layers)
    tree = cKDTree(demand_xy) if len(demand_xy) and not split else None
    region_values = demand["region"].to_numpy()
    region_names = tuple(sorted({r for r in region_values if r is not None}))
    demand_region = _region_codes(region_values, region_names)
    constraints = scenario.constraints
    types = []
    existing_reach = []
    merged = []
    context = _ReachContext(scenario, layers, demand_xy, tree)
    for name, spec in scenario.facilities.items():
        if progress:
            progress(f"reach: {name}")
        cand = layers.facilities[name].candidates
        existing = layers.facilities[name].existing
        if split:
            covered = covered_in_partitions(
                demand_xy,
                xy(existing),
                existing["reach_value"].to_numpy(float),
                chunk=PARTITION_CHUNK,
            )
            reach = sp.csr_matrix((0, len(cand)), dtype=bool)  # the class reach replaces it
            before = None
        else:
            reach = context.reach(cand)
            before = context.reach(existing)
            covered = covered_by(before)
            existing_reach.append(before)
        capacity = {}
        if name in scenario.bed_types():
            capacity = {
                "existing_reach": before,
                "existing_beds": schema.SITE["beds"].counted(existing),
            }
        tier_names = tuple(spec.tiers or {})
        tier_index = {t: k for k, t in enumerate(tier_names)}
        tier = np.array([tier_index.get(t, -1) for t in cand["tier"]], dtype=np.int64)
        types.append(
            TypeProblem(
                name=name,
                reach=reach,
                covered_before=covered,
                cost=schema.SITE["cost"].counted(cand),
                beds=schema.SITE["beds"].counted(cand),
                target=scenario.objective.target.get(name),
                min_beds=float(constraints.min_beds.get(name, 0)),
                **referral_of(spec, cand, existing),
                **capacity,
                tier=tier,
                region=_region_codes(cand["region"].to_numpy(), region_names),
                tier_names=tier_names,
                alpha=scenario.alpha(name),
                count=Bounds(spec.lower, spec.upper),
                tier_counts={
                    tier_index[t]: Bounds(ts.lower, ts.upper)
                    for t, ts in (spec.tiers or {}).items()
                    if ts.lower > 0 or ts.upper is not None
                },
                region_min_sites={
                    k: int(v)
                    for k, v in _per_region(
                        constraints.region_min_sites.get(name, 0),
                        region_names,
                        f"region_min_sites.{name}",
                    ).items()
                },
                region_min_coverage={
                    k: float(v)
                    for k, v in _per_region(
                        constraints.region_min_coverage.get(name, 0.0),
                        region_names,
                        f"region_min_coverage.{name}",
                    ).items()
                    if v > 0
                },
            )
        )
        if split:
            tp = types[-1]
            by_region = bool(tp.region_min_coverage) or (
                scenario.objective.by_region and tp.target is not None
            )
            merged.append(
                reach_in_partitions(
                    demand_xy,
                    weight,
                    xy(cand),
                    cand["reach_value"].to_numpy(float),
                    covered_before=covered,
                    chunk=PARTITION_CHUNK,
                    region=demand_region if by_region else None,
                )
            )
    if split:
        classes = classes_from_merged(merged, weight, region=demand_region)
        types = [
            dataclasses.replace(
                tp, reach=classes.reach[k], covered_before=classes.covered_before[k]
            )
            for k, tp in enumerate(types)
        ]
        weight, demand_region = classes.weight, classes.region
    problem = Problem(
        weight=weight,
        types=tuple(types),
        region=demand_region if region_names else None,
        region_names=region_names,
        budget=constraints.budget,
        by_region=scenario.objective.by_region,
        bed_need=(weight * scenario.beds.per_1000 / 1000.0 if scenario.beds is not None else None),
        **objectives.get(scenario.objective.kind).problem_fields(scenario),
    )
    return problem, existing_reach


def roads_of(scenario: Scenario, layers: Layers) -> Roads | None:
    """The verifier's plain-array view of the road network."""
    network = layers.network
    if network is None or scenario.network is None:
        return None
    return Roads(
        node_xy=network.node_xy,
        u=network.u,
        v=network.v,
        length_m=network.length_m,
        speed_kmh=network.speed_kmh,
        oneway=network.oneway,
        walk_m_per_min=scenario.network.walk_m_per_min,
        max_snap_m=scenario.network.max_snap_m,
    )


def solver_options(scenario: Scenario) -> SolverOptions:
    s = scenario.solver
    options = SolverOptions(
        name=s.name, time_limit_s=s.time_limit_s, mip_gap=s.mip_gap, threads=s.threads
    )
    if s.cbc_options is not None:
        options = dataclasses.replace(options, cbc_options=tuple(s.cbc_options))
    return options
