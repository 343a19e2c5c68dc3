"""A plan of a scenario, checked and summarised: the verifier's view of it (plain arrays), the
independent check of the plan and of what its result claims, beds before → after, the areas
reached and the road network's summary."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd

from carecheck import objectives, schema
from carecheck.assemble import roads_of, travel_modes
from carecheck.config import Scenario
from carecheck.data import Layers, xy
from carecheck.network import reach_areas, snap_points
from carecheck.verify import TypePlan, Verification, reach_pairs, served_beds, verify_plan


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
                **{f"candidate_{k}": schema.SITE[k].counted(cand) for k in schema.VERIFIED},
                existing_tier=existing["tier"].to_numpy(object),
                min_beds=float(regions.min_beds.get(name, 0)),
                target=scenario.objective.target.get(name),
                referral={
                    t: (ts.referral.within_m, tuple(ts.referral.tiers))
                    for t, ts in (spec.tiers or {}).items()
                    if ts.referral is not None
                },
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
        np.array([m or "walk" for m in travel_modes(sites)], dtype=object),
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
    modes = np.array([m or "walk" for m in travel_modes(sites)], dtype=object)
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
