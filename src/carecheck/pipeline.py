"""Run a scenario end to end: layers → reach → reductions → model → solve → verify → outputs."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from carecheck import objectives
from carecheck.config import FacilitySpec, Scenario, load_scenario
from carecheck.coverage import covered_by, reach_matrix
from carecheck.data import Layers, load_layers, xy
from carecheck.errors import (
    DataError,
    NoSolutionError,
    ScenarioError,
    VerificationError,
)
from carecheck.model import (
    Bounds,
    Problem,
    TypeProblem,
)
from carecheck.network import Snap, network_reach, reach_areas, snap_points
from carecheck.objectives.base import Stages
from carecheck.outdir import fingerprint, locked, resolve_target
from carecheck.partition import classes_from_merged, covered_in_partitions, reach_in_partitions
from carecheck.result import RunResult
from carecheck.solve import (
    SolverOptions,
    relative_gap,
)
from carecheck.textsafe import from_spreadsheet_cell
from carecheck.verify import (
    Roads,
    TypePlan,
    Verification,
    reach_pairs,
    served_beds,
    verify_plan,
)

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- problem adapter


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


def _modes(sites: pd.DataFrame) -> np.ndarray:
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
        modes = _modes(sites)
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


def beds_summary(scenario: Scenario, layers: Layers, selected: pd.DataFrame) -> dict | None:
    """Bed need, beds and the need they can serve, before and after the plan (max flow over
    plain distances, independent of the model), overall and per region."""
    if scenario.beds is None:
        return None
    weight = layers.demand["weight"].to_numpy(float)
    need = weight * scenario.beds.per_1000 / 1000.0
    demand_xy = xy(layers.demand)
    roads = roads_of(scenario, layers)
    frames = []
    for name in scenario.bed_types():
        existing = layers.facilities[name].existing.assign(status="existing")
        cand = layers.facilities[name].candidates
        ids = set(selected.loc[selected["type"] == name, "id"].astype(str))
        frames += [existing, cand[cand["id"].astype(str).isin(ids)].assign(status="selected")]
    sites = pd.concat([f for f in frames if len(f)], ignore_index=True)
    within = reach_pairs(
        demand_xy,
        xy(sites),
        sites["reach_value"].to_numpy(float),
        sites["reach_kind"].to_numpy(object),
        np.array([m or "walk" for m in _modes(sites)], dtype=object),
        roads,
    )
    beds = np.nan_to_num(sites["beds"].to_numpy(float))
    before = (sites["status"] == "existing").to_numpy()
    counted = np.ones(len(sites), dtype=bool)
    served_before, per_before = served_beds(need, within[:, before], beds[before])
    served_after, per_after = served_beds(need, within[:, counted], beds[counted])
    region = layers.demand["region"].to_numpy(object)
    site_region = sites["region"].to_numpy(object)
    blocks = []
    for name in sorted({r for r in region if r is not None}):
        in_region = region == name
        elderly = float(weight[in_region].sum())
        here = site_region == name
        beds_before = float(beds[here & before].sum())
        beds_after = float(beds[here].sum())
        blocks.append(
            {
                "region": name,
                "elderly": elderly,
                "need": float(need[in_region].sum()),
                "beds_before": beds_before,
                "beds_after": beds_after,
                "beds_per_1000_before": 1000 * beds_before / elderly if elderly else None,
                "beds_per_1000_after": 1000 * beds_after / elderly if elderly else None,
                "served_before": float(per_before[in_region].sum()),
                "served_after": float(per_after[in_region].sum()),
            }
        )
    total_weight = float(weight.sum())
    return {
        "per_1000": scenario.beds.per_1000,
        "nursing_share": scenario.beds.nursing_share,
        "need": float(need.sum()),
        "nursing_need": (
            float(need.sum()) * scenario.beds.nursing_share
            if scenario.beds.nursing_share is not None
            else None
        ),
        "beds_before": float(beds[before].sum()),
        "beds_after": float(beds.sum()),
        "beds_per_1000_before": 1000 * float(beds[before].sum()) / total_weight,
        "beds_per_1000_after": 1000 * float(beds.sum()) / total_weight,
        "served_before": served_before,
        "served_after": served_after,
        "unmet_after": float(need.sum()) - served_after,
        "sites_without_region": int(sum(r is None for r in site_region)),
        "by_region": blocks,
    }


def reach_area_frame(
    scenario: Scenario, layers: Layers, selected: pd.DataFrame
) -> gpd.GeoDataFrame | None:
    """Travel-time / road-distance areas of opened and existing sites with network reach."""
    network = layers.network
    if network is None or scenario.network is None:
        return None
    frames = []
    for name in scenario.facilities:
        existing = layers.facilities[name].existing.assign(status="existing")
        cand = layers.facilities[name].candidates
        chosen_ids = set(selected.loc[selected["type"] == name, "id"].astype(str))
        chosen = cand[cand["id"].astype(str).isin(chosen_ids)].assign(status="selected")
        frames += [f for f in (existing, chosen) if len(f)]
    if not frames:
        return None
    sites = pd.concat(frames, ignore_index=True)
    sites = sites[sites["reach_kind"] != "radius_m"]
    if not len(sites):
        return None
    geometry: list = [None] * len(sites)
    kinds = sites["reach_kind"].to_numpy(object)
    modes = np.array([m or "walk" for m in _modes(sites)], dtype=object)
    for kind, mode in sorted(set(zip(kinds, modes, strict=True))):
        members = np.flatnonzero((kinds == kind) & (modes == mode))
        areas = reach_areas(
            network,
            snap_points(network, xy(sites.iloc[members])),
            sites["reach_value"].to_numpy(float)[members],
            kind=kind,
            mode=mode,
            walk_m_per_min=scenario.network.walk_m_per_min,
        )
        for k, area in zip(members, areas, strict=True):
            geometry[k] = area
    frame = gpd.GeoDataFrame(
        sites[
            ["id", "type", "tier", "name", "status", "reach_kind", "reach_value", "reach_mode"]
        ].reset_index(drop=True),
        geometry=gpd.GeoSeries(geometry, crs=layers.crs),
        crs=layers.crs,
    )
    frame = frame[frame.geometry.notna()]
    frame["geometry"] = frame.geometry.simplify(10.0)
    return frame.to_crs(4326)


def network_summary(scenario: Scenario, layers: Layers) -> dict | None:
    """Size and components of the network, and the points too far from any road, by id."""
    network = layers.network
    if network is None or scenario.network is None:
        return None
    labels = network.components()
    sizes = np.bincount(labels)
    limit = scenario.network.max_snap_m
    too_far_demand = snap_points(network, xy(layers.demand)).leg_m > limit
    too_far_sites = []
    for name in scenario.facilities:
        for role in ("candidates", "existing"):
            frame = getattr(layers.facilities[name], role)
            on_network = frame["reach_kind"].to_numpy(object) != "radius_m"
            if not on_network.any():
                continue
            legs = snap_points(network, xy(frame[on_network])).leg_m
            too_far_sites += [f"{name}:{i}" for i in frame["id"][on_network][legs > limit]]
    demand_ids = layers.demand["id"][too_far_demand].astype(str).tolist()
    return {
        "nodes": network.n_nodes,
        "edges": network.n_edges,
        "components": len(sizes),
        "largest_component_share": float(sizes.max() / sizes.sum()) if len(sizes) else 0.0,
        "max_snap_m": limit,
        "unreachable_demand": demand_ids,
        "unreachable_sites": too_far_sites,
    }


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
                "existing_beds": np.nan_to_num(existing["beds"].to_numpy(float)),
            }
        tier_names = tuple(spec.tiers or {})
        tier_index = {t: k for k, t in enumerate(tier_names)}
        tier = np.array([tier_index.get(t, -1) for t in cand["tier"]], dtype=np.int64)
        types.append(
            TypeProblem(
                name=name,
                reach=reach,
                covered_before=covered,
                cost=cand["cost"].to_numpy(float),
                beds=np.nan_to_num(cand["beds"].to_numpy(float)),
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


# --------------------------------------------------------------------------- the run


def plans_from_layers(
    scenario: Scenario, layers: Layers, selected: dict[str, list[str]]
) -> list[TypePlan]:
    """The verifier's view of a plan: raw coordinates, reaches and attributes per type."""
    plans = []
    regions = scenario.constraints
    region_names = sorted({r for r in layers.demand["region"] if r is not None})
    for name, spec in scenario.facilities.items():
        cand = layers.facilities[name].candidates
        existing = layers.facilities[name].existing
        min_sites = regions.region_min_sites.get(name)
        min_cover = regions.region_min_coverage.get(name)
        plans.append(
            TypePlan(
                name=name,
                candidate_ids=cand["id"].to_numpy(object),
                candidate_xy=xy(cand),
                candidate_reach=cand["reach_value"].to_numpy(float),
                candidate_reach_kind=cand["reach_kind"].to_numpy(object),
                candidate_reach_mode=cand["reach_mode"].to_numpy(object),
                existing_reach_kind=existing["reach_kind"].to_numpy(object),
                existing_reach_mode=existing["reach_mode"].to_numpy(object),
                existing_ids=existing["id"].to_numpy(object),
                existing_xy=xy(existing),
                existing_reach=existing["reach_value"].to_numpy(float),
                selected_ids=list(selected.get(name, [])),
                candidate_tier=cand["tier"].to_numpy(object),
                existing_tier=existing["tier"].to_numpy(object),
                candidate_cost=cand["cost"].to_numpy(float),
                candidate_beds=np.nan_to_num(cand["beds"].to_numpy(float)),
                min_beds=float(regions.min_beds.get(name, 0)),
                target=scenario.objective.target.get(name),
                referral={
                    t: (ts.referral.within_m, tuple(ts.referral.tiers))
                    for t, ts in (spec.tiers or {}).items()
                    if ts.referral is not None
                },
                candidate_region=cand["region"].to_numpy(object),
                alpha=scenario.alpha(name),
                count=(spec.lower, spec.upper),
                tier_counts={t: (ts.lower, ts.upper) for t, ts in (spec.tiers or {}).items()},
                region_min_sites=(
                    min_sites
                    if isinstance(min_sites, dict)
                    else dict.fromkeys(region_names, min_sites)
                    if min_sites
                    else {}
                ),
                region_min_coverage=(
                    min_cover
                    if isinstance(min_cover, dict)
                    else dict.fromkeys(region_names, min_cover)
                    if min_cover
                    else {}
                ),
            )
        )
    return plans


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


def input_files(scenario: Scenario) -> list[tuple[str, Path]]:
    """Every file a run reads, by role: the scenario, its layers, the baseline scenario."""
    files: list[tuple[str, Path]] = []
    if scenario.source is not None:
        files.append(("scenario", Path(scenario.source)))
    files.append(("demand", Path(scenario.demand.path)))
    for name, spec in scenario.facilities.items():
        files.append((f"facilities.{name}.candidates", Path(spec.candidates.path)))
        if spec.existing is not None:
            files.append((f"facilities.{name}.existing", Path(spec.existing.path)))
    if scenario.regions is not None:
        files.append(("regions", Path(scenario.regions.path)))
    if scenario.network is not None:
        files.append(("network", Path(scenario.network.path)))
    if scenario.compare_with is not None:
        files.append(("compare_with", Path(scenario.compare_with)))
    return files


def input_fingerprints(scenario: Scenario) -> list[dict]:
    """Role, absolute path, size and SHA-256 of every input file (see :func:`input_files`)."""
    return [
        {"role": role, "path": path.resolve(), **fingerprint(path)}
        for role, path in input_files(scenario)
    ]


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    out: str | Path | None = None,
    solver: str | None = None,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    write: bool = True,
    compare: bool = True,
    map_html: bool | None = None,
    map_lang: str | None = None,
    map_offline: bool | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Solve a scenario, verify the plan independently and write the outputs.

    Parameters
    ----------
    scenario
        A :class:`Scenario` or the path of a scenario YAML.
    out
        Output folder (default ``outputs/<name>/`` beside the working directory).
    solver, time_limit_s, mip_gap
        Override the scenario's solver settings.
    write
        Write the output files (``False`` returns the result only).
    compare
        Also solve the scenario's ``compare_with`` baseline and compare (default True).
    map_html, map_lang, map_offline
        Write ``map.html``, in ``zh`` or ``en``, self-contained for offline use (None: the
        scenario's ``map:`` settings).

    Raises
    ------
    ScenarioError, DataError
        Bad input (exit code 2 in the CLI).
    InfeasibleError
        No plan meets the constraints; ``diagnosis`` names what to relax.
    NoSolutionError
        The time limit passed before any plan was found.
    VerificationError
        The independent check disagrees with the solution (a bug: please report it).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    scenario = scenario.with_solver(name=solver, time_limit_s=time_limit_s, mip_gap=mip_gap)
    if not write:
        return _solve(scenario, None, compare, map_html, map_lang, map_offline, progress)
    # refused before any solving when the folder may not be replaced; one run at a time
    out_dir = resolve_target(out if out is not None else Path("outputs") / scenario.name)
    with locked(out_dir):
        return _solve(scenario, out_dir, compare, map_html, map_lang, map_offline, progress)


def _solve(
    scenario: Scenario,
    out_dir: Path | None,
    compare: bool,
    map_html: bool | None,
    map_lang: str | None,
    map_offline: bool | None,
    progress: Progress | None,
) -> RunResult:
    """The run of :func:`run_scenario`; writes into ``out_dir`` unless it is None."""
    from carecheck.report import compare_documents, coverage_tables, plan_checks, write_outputs

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        clock = time.perf_counter()
        if progress:
            progress(name)

    def done(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    stage("load layers")
    inputs = input_fingerprints(scenario)
    layers = load_layers(scenario)
    done("load")
    stage("reach")
    problem, _ = problem_from_layers(scenario, layers, progress=progress)
    done("reach")
    options = solver_options(scenario)
    objective_of = objectives.get(scenario.objective.kind)
    solved = objective_of.solve(scenario, layers, problem, options, Stages(stage, done))
    outcome, model_size = solved.outcome, solved.model_size
    if outcome.status == "infeasible":
        raise objective_of.infeasible(scenario, solved, options, Stages(stage, done))
    if outcome.status == "no_solution" or outcome.values is None:
        raise NoSolutionError(
            f"scenario {scenario.name}: the solver found no plan within "
            f"{options.time_limit_s} s; raise --time-limit"
        )
    opened = objective_of.decode(solved)
    stage("verify")
    selected, coverage, demand_table, masks, total_cost = coverage_tables(
        scenario, layers, problem, opened
    )
    # the exact objective of the chosen sites (the solver's value carries float noise)
    objective = objective_of.value(scenario, coverage, selected, outcome)
    bound = objective_of.bound(outcome, objective)
    beds = beds_summary(scenario, layers, selected)
    verification = check_plan(
        scenario,
        layers,
        {t: selected.loc[selected["type"] == t, "id"].tolist() for t in scenario.facilities},
        coverage=coverage,
        objective=objective,
        masks=masks,
        beds=beds,
    )
    done("verify")
    if not verification.ok:
        raise VerificationError(verification.problems)
    demand_table = _add_nearest(demand_table, verification, scenario)
    result = RunResult(
        scenario=scenario,
        status=outcome.status,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        selected=selected,
        coverage=coverage,
        demand=demand_table,
        verification=verification,
        timings=timings,
        model_size=model_size,
        total_cost=total_cost,
        layers=layers,
        network=network_summary(scenario, layers),
        beds=beds,
        reach_areas=reach_area_frame(scenario, layers, selected),
        inputs=inputs,
        checks=plan_checks(scenario, layers, problem, selected),
    )
    if compare and scenario.compare_with is not None:
        stage("solve the baseline scenario")
        baseline = run_scenario(
            scenario.compare_with, write=False, compare=False, solver=scenario.solver.name
        )
        result = _with(result, comparison=compare_documents(baseline.to_json(), result.to_json()))
        done("baseline")
    if out_dir is None:
        return result
    stage("write outputs")
    settings = scenario.map
    draw = settings.write if map_html is None else map_html

    def write_the_map(folder: Path) -> None:
        from carecheck.maps import write_map

        write_map(
            folder,
            regions=layers.regions,
            lang=map_lang or settings.lang,
            offline=settings.offline if map_offline is None else map_offline,
        )

    result = _with(result, out_dir=out_dir)  # input paths relative to it in result.json
    write_outputs(result, out_dir, also=write_the_map if draw else None)
    done("write")
    return _with(result, timings=timings)


def _with(result: RunResult, **changes: object) -> RunResult:
    from dataclasses import replace

    return replace(result, **changes)  # type: ignore[arg-type]


def _add_nearest(
    table: pd.DataFrame, verification: Verification, scenario: Scenario
) -> pd.DataFrame:
    table = table.copy()
    for name in scenario.facilities:
        cov = verification.coverage[name]
        table[f"nearest_{name}_id"] = cov.nearest_id
        table[f"nearest_{name}_m"] = np.where(
            np.isfinite(cov.nearest_m), np.round(cov.nearest_m, 1), np.nan
        )
    return table


# --------------------------------------------------------------------------- finished runs


def read_result(out_dir: str | Path) -> dict:
    """The ``result.json`` of a finished run.

    Raises
    ------
    DataError
        When the folder holds no readable result.
    """
    path = Path(out_dir) / "result.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; is {out_dir} a carecheck output folder?") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def compare_outputs(baseline_dir: str | Path, other_dir: str | Path) -> dict:
    """Two finished runs side by side (see :func:`carecheck.report.compare_documents`)."""
    from carecheck.report import compare_documents

    return compare_documents(read_result(baseline_dir), read_result(other_dir))


def verify_outputs(
    out_dir: str | Path, *, scenario: str | Path | None = None, solve: bool = True
) -> Verification:
    """Re-check a finished run from its files against the scenario's layers.

    First the inputs: every file the run read (recorded in ``result.json`` with its size and
    SHA-256) must be unchanged, else there is nothing to verify against. Then the plan, by the
    independent check (coverage by brute force, counts, budget, quotas, every reported
    figure). Then, unless ``solve`` is False, the claim: the scenario is solved afresh, and a
    plan claimed optimal must be as good as the fresh optimum, and a claimed bound must not be
    beaten by the fresh plan.

    ``scenario``: the scenario file, for a folder moved away from it (default: the one
    recorded, relative to the folder where possible).

    Raises
    ------
    DataError
        When the folder is not a complete carecheck run, its scenario is not found, or an
        input changed since the run.
    """
    out_dir = Path(out_dir)
    result_path = out_dir / "result.json"
    result = read_result(out_dir)
    scenario_file = _scenario_of(result, out_dir, scenario)
    if scenario_file is None:
        raise DataError(
            f"{result_path}: the scenario file {result.get('scenario_file')!r} it was made from "
            "is not found; verify needs the scenario and its data (give --scenario FILE for a "
            "folder moved away from them)"
        )
    loaded = load_scenario(scenario_file)
    _check_inputs(result, loaded, result_path)
    layers = load_layers(loaded)
    verification = _check_result(result, out_dir, loaded, layers)
    if solve and verification.ok:
        extra = _check_claim(result, loaded)
        if extra:
            verification = dataclasses.replace(
                verification, problems=[*verification.problems, *extra]
            )
    return verification


def _scenario_of(result: dict, out_dir: Path, given: str | Path | None) -> Path | None:
    """The scenario file to verify against: ``given``, else the recorded one (relative to the
    output folder first, then the absolute path)."""
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise DataError(f"--scenario {given}: not found")
        return path
    recorded = [item["path"] for item in result.get("inputs", []) if item["role"] == "scenario"]
    candidates = [out_dir / p for p in recorded] + [Path(p) for p in recorded]
    if result.get("scenario_file"):
        candidates.append(Path(result["scenario_file"]))
    return next((p for p in candidates if p.is_file()), None)


def _check_inputs(result: dict, scenario: Scenario, result_path: Path) -> None:
    """Refuse when an input file differs from the one the run read (by role)."""
    recorded = {item["role"]: item for item in result.get("inputs", [])}
    if not recorded:
        return  # a run written before carecheck recorded its inputs
    changed = []
    now = {role: path for role, path in input_files(scenario)}
    for role, item in recorded.items():
        path = now.get(role)
        if path is None:
            changed.append(f"{role}: the run read {item['path']}; the scenario has no {role} now")
            continue
        if not path.is_file():
            changed.append(f"{role}: {path} is not found")
            continue
        current = fingerprint(path)
        if current != {"size": item["size"], "sha256": item["sha256"]}:
            changed.append(
                f"{role}: {path} changed since the run ({item['size']:,} → {current['size']:,} "
                f"bytes, SHA-256 {item['sha256'][:12]}… → {current['sha256'][:12]}…)"
            )
    changed += [f"{role}: {now[role]} is new since the run" for role in now if role not in recorded]
    if changed:
        raise DataError(
            [
                f"{result_path}: the inputs changed since the run, so it cannot be verified "
                "against them; run the scenario again (or restore the files):",
                *(f"- {line}" for line in changed),
            ]
        )


def _check_result(result: dict, out_dir: Path, scenario: Scenario, layers: Layers) -> Verification:
    """The independent check of the plan and the figures in ``result.json``."""
    selected: dict[str, list[str]] = {}
    for site in result.get("selected", []):
        selected.setdefault(site["type"], []).append(str(site["id"]))
    masks = None
    csv_path = out_dir / "demand_coverage.csv"
    if csv_path.exists():
        table = pd.read_csv(csv_path, encoding="utf-8-sig", dtype={"demand_id": str})
        table["demand_id"] = table["demand_id"].map(from_spreadsheet_cell)
        table.columns = [str(from_spreadsheet_cell(c)) for c in table.columns]
        order = layers.demand["id"].astype(str)
        table = table.set_index("demand_id").reindex(order)
        if table.index.isna().any() or len(table) != len(order):
            raise DataError(f"{csv_path}: demand ids do not match the demand layer")
        masks = {
            t: (
                table[f"covered_before_{t}"].fillna(0).astype(int).to_numpy() > 0,
                table[f"covered_after_{t}"].fillna(0).astype(int).to_numpy() > 0,
            )
            for t in scenario.facilities
            if f"covered_after_{t}" in table.columns
        }
    return check_plan(
        scenario,
        layers,
        selected,
        coverage=result.get("coverage", {}),
        objective=result.get("objective"),
        masks=masks,
    )


def _check_claim(result: dict, scenario: Scenario) -> list[str]:
    """Solve ``scenario`` afresh: a plan claimed optimal must be as good as the fresh one,
    and no fresh plan may beat the claimed bound (within the scenario's MIP gap)."""
    claimed, bound = result.get("objective"), result.get("bound")
    if claimed is None:
        return []
    fresh = run_scenario(scenario, write=False, compare=False)
    if fresh.objective is None:
        return []
    sense = float(objectives.get(scenario.objective.kind).sense)
    better = fresh.objective
    slack = 1e-6 * max(1.0, abs(better)) + scenario.solver.mip_gap * abs(better)
    problems = []
    if result.get("status") == "optimal" and sense * (better - claimed) > slack:
        problems.append(
            f"status: the result claims its plan is optimal with objective {claimed:,.3f}, "
            f"but a fresh solve finds a plan with {better:,.3f}"
        )
    if bound is not None and sense * (better - bound) > slack:
        problems.append(
            f"bound: the result claims that no plan reaches past {bound:,.3f}, but a fresh "
            f"solve finds a plan with {better:,.3f}"
        )
    return problems


def map_outputs(
    out_dir: str | Path, *, lang: str | None = None, offline: bool | None = None
) -> Path:
    """Redraw ``map.html`` of a finished run from its files, without solving again.

    The region polygons come from the run's scenario when that file is still there;
    otherwise the map is drawn without them. ``lang`` / ``offline`` default to the scenario's
    ``map:`` settings.
    """
    from carecheck.data import load_regions
    from carecheck.maps import write_map

    scenario_file = read_result(out_dir).get("scenario_file")
    regions = None
    settings = None
    if scenario_file and Path(scenario_file).exists():
        loaded = load_scenario(scenario_file)
        settings = loaded.map
        if loaded.regions is not None:
            regions = load_regions(loaded.regions)
    return write_map(
        Path(out_dir),
        regions=regions,
        lang=lang or (settings.lang if settings else "zh"),
        offline=offline if offline is not None else bool(settings and settings.offline),
    )


def check_plan(
    scenario: Scenario,
    layers: Layers,
    selected: dict[str, list[str]],
    *,
    coverage: dict,
    objective: float | None,
    masks: dict | None,
    beds: dict | None = None,
) -> Verification:
    """The independent check of a plan and of what its result claims (coverage, objective,
    beds served for the capacitated objective)."""
    objective_of = objectives.get(scenario.objective.kind)
    verification = verify_plan(
        xy(layers.demand),
        layers.demand["weight"].to_numpy(float),
        plans_from_layers(scenario, layers, selected),
        region=layers.demand["region"].to_numpy(object),
        budget=scenario.constraints.budget,
        roads=roads_of(scenario, layers),
        by_region=scenario.objective.by_region,
        claimed={
            "coverage": coverage,
            "objective": objective if objective_of.verifies_value else None,
        },
        claimed_masks=masks,
        **objective_of.verify_options(scenario),
    )

    def beds_of_plan() -> dict | None:
        if beds is not None:
            return beds
        frame = pd.DataFrame(
            [(t, i) for t, ids in selected.items() for i in ids], columns=["type", "id"]
        )
        return beds_summary(scenario, layers, frame)

    extra = objective_of.plan_problems(scenario, layers, verification, objective, beds_of_plan)
    if extra:
        verification = dataclasses.replace(verification, problems=[*verification.problems, *extra])
    return verification
