"""Turn a solved plan into the output contract, and write the files atomically.

``result.json``, ``selected_sites.geojson``, ``demand_coverage.csv`` (UTF-8 with BOM, for Excel
on Chinese Windows) and, with road reach, ``reach_areas.geojson`` are written into a temporary
folder beside the target; the deliverables drawn from them (:mod:`carecheck.deliverables`)
follow in the same folder, which is moved into place only when all are complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from carecheck import objectives, schema
from carecheck.config import Scenario
from carecheck.data import Layers, xy
from carecheck.model import Problem, effective_sites
from carecheck.outdir import write_folder
from carecheck.partition import covered_in_partitions
from carecheck.result import RunResult, json_value
from carecheck.textsafe import markdown_text, write_csv

OUTPUT_FILES = (
    ".carecheck-output",
    "result.json",
    "selected_sites.geojson",
    "demand_coverage.csv",
    "plan.gpkg",
    "map.png",
    "map.pdf",
    "plan.xlsx",
    "report.md",
    "report.docx",
)  # and map.html unless the run was asked for none; reach_areas.geojson with road reach


def coverage_tables(
    scenario: Scenario, layers: Layers, problem: Problem, opened: list[np.ndarray]
) -> tuple[pd.DataFrame, dict, pd.DataFrame, dict, float]:
    """Selected sites, the coverage summary, the per-demand table and coverage masks.

    Returns (selected, coverage, demand_table, masks, total_cost); coverage is computed from
    the reach matrices (the verifier recomputes it from plain distances).
    """
    demand = layers.demand
    # demand units of the problem: the points, or classes of points when built in partitions
    unit_weight = np.asarray(problem.weight, float)
    by_class = problem.n_demand != len(demand)
    weight = demand["weight"].to_numpy(float) if by_class else unit_weight
    masks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    frames = []
    for tp, sites in zip(problem.types, opened, strict=True):
        unit_before = np.asarray(tp.covered_before, bool)
        counted = np.isin(sites, effective_sites(tp, sites))
        # a linked site without a referral site is opened but reaches nobody (it does not count)
        reach = sp.csc_matrix(tp.reach)[:, sites] @ sp.diags(counted.astype(float))
        reached = np.asarray(reach.sum(axis=1)).ravel() > 0
        if by_class:
            masks[tp.name] = _point_masks(layers, tp.name, sites[counted])
        else:
            masks[tp.name] = (unit_before, unit_before | reached)
        newly = (~unit_before).astype(float) * unit_weight
        reached_count = np.asarray(reach.sum(axis=1)).ravel()
        only = ((reached_count == 1) & ~unit_before).astype(float) * unit_weight
        cand = layers.facilities[tp.name].candidates.iloc[sites]
        priority, marginal = build_order(reach, newly, cand["id"].astype(str).to_numpy(object))
        lonlat = cand.geometry.to_crs(4326)
        values = {
            name: schema.SITE[name].array(cand)
            for name in schema.SELECTED
            if schema.SITE[name].origin not in ("plan", "place")
        }
        values |= {
            "lon": np.round(lonlat.x.to_numpy(), 6),
            "lat": np.round(lonlat.y.to_numpy(), 6),
            "new_covered_weight": np.asarray(reach.T @ newly).ravel(),
            "unique_covered_weight": np.asarray(reach.T @ only).ravel(),
            "priority": priority,
            "marginal_weight": marginal,
        }
        frames.append(
            pd.DataFrame(
                {name: values[name] for name in schema.SELECTED}
                | {"x": cand.geometry.x.to_numpy(), "y": cand.geometry.y.to_numpy()}
            )
        )
    selected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    region = demand["region"].to_numpy(object)
    region_names = sorted({r for r in region if r is not None})

    def block(mask: np.ndarray) -> dict:
        return {
            name: {
                "covered_before": float(weight[mask & before].sum()),
                "covered_after": float(weight[mask & after].sum()),
            }
            for name, (before, after) in masks.items()
        }

    everything = np.ones(len(weight), dtype=bool)
    coverage = {
        "demand_total": float(weight.sum()),
        "types": block(everything),
        "by_region": [
            {
                "region": name,
                "demand_total": float(weight[region == name].sum()),
                "types": block(region == name),
            }
            for name in region_names
        ],
    }
    lonlat = demand.geometry.to_crs(4326)
    values = {
        "id": demand["id"].to_numpy(object),
        "name": demand["name"].to_numpy(object),
        "weight": weight,
        "region": region,
        "lon": np.round(lonlat.x.to_numpy(), 6),
        "lat": np.round(lonlat.y.to_numpy(), 6),
    }
    table = pd.DataFrame(
        {schema.DEMAND_TABLE_NAMES.get(name, name): values[name] for name in schema.DEMAND_TABLE}
    )
    for name, (before, after) in masks.items():
        table[f"covered_before_{name}"] = before.astype(int)
        table[f"covered_after_{name}"] = after.astype(int)
    total_cost = float(selected["cost"].sum()) if len(selected) else 0.0
    return selected, coverage, table, masks, total_cost


def build_order(
    reach: sp.spmatrix, weight: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The order in which to build a type's chosen sites: greedy by what each adds.

    ``reach`` is (demand × chosen sites), ``weight`` the demand weight not covered before the
    plan (0 where an existing facility already covers it). Step by step, the next site is the
    one that covers the most weight not yet covered by the sites before it; ties go to the
    smaller id. Returns each site's priority (1 = build first) and ``marginal_weight``, what
    it adds at its step (0: it adds no one once the sites before it are built).
    """
    n = reach.shape[1]
    columns = sp.csc_matrix(reach, dtype=float)
    left = np.asarray(weight, float).copy()
    priority = np.zeros(n, dtype=np.int64)
    marginal = np.zeros(n)
    rank_of_id = np.empty(n, dtype=np.int64)
    rank_of_id[np.argsort(ids.astype(str), kind="stable")] = np.arange(n)
    remaining = np.ones(n, dtype=bool)
    for step in range(1, n + 1):
        gains = np.asarray(columns.T @ left).ravel()
        gains[~remaining] = -np.inf
        best = np.flatnonzero(gains == gains.max())
        pick = int(best[np.argmin(rank_of_id[best])])
        priority[pick], marginal[pick] = step, max(float(gains[pick]), 0.0)
        remaining[pick] = False
        left[columns.indices[columns.indptr[pick] : columns.indptr[pick + 1]]] = 0.0
    return priority, marginal


def plan_checks(
    scenario: Scenario, layers: Layers, problem: Problem, selected: pd.DataFrame
) -> dict:
    """What the plan cannot change and what it opens for nothing, per type.

    ``idle_sites``: opened sites that add no one in the build order (:func:`build_order`):
    everyone they reach is covered by existing facilities or the sites built before them — an
    exact or minimum count forced them open; ``max_count`` would leave them out.
    ``unreachable``: the weight of demand that no candidate and no existing facility of the
    type reaches, in total and by region (no plan of these candidates can cover it).
    """
    idle: dict[str, list[str]] = {}
    unreachable: dict[str, dict] = {}
    by_points = problem.n_demand == len(layers.demand)
    region = layers.demand["region"].to_numpy(object)
    weight = np.asarray(problem.weight, float)
    flags_idle = objectives.get(scenario.objective.kind).flags_idle_sites
    for tp in problem.types:
        chosen = selected[selected["type"] == tp.name]
        if flags_idle and len(chosen):
            order = chosen.sort_values("priority")
            idle[tp.name] = [
                str(i) for i, m in zip(order["id"], order["marginal_weight"], strict=True) if m <= 0
            ]
        if by_points:
            reachable = (tp.reach.getnnz(axis=1) > 0) | np.asarray(tp.covered_before, bool)
            point_weight = weight
        else:  # rows are classes of points (straight-line reach only): recount per point
            sites = pd.concat(
                [layers.facilities[tp.name].candidates, layers.facilities[tp.name].existing]
            )
            reachable = covered_in_partitions(
                xy(layers.demand), xy(sites), sites["reach_value"].to_numpy(float)
            )
            point_weight = layers.demand["weight"].to_numpy(float)
        lost = ~reachable & (point_weight > 0)
        unreachable[tp.name] = {
            "weight": float(point_weight[lost].sum()),
            "units": int(lost.sum()),
            "by_region": {
                str(r): float(point_weight[lost & (region == r)].sum())
                for r in sorted({r for r in region[lost] if r is not None})
            },
        }
    return {"idle_sites": idle, "unreachable": unreachable}


def _point_masks(layers: Layers, name: str, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Covered before and after per demand point, recounted from distances in partitions."""
    demand_xy = xy(layers.demand)
    existing = layers.facilities[name].existing
    opened = layers.facilities[name].candidates.iloc[counted]
    before = covered_in_partitions(demand_xy, xy(existing), existing["reach_value"].to_numpy(float))
    reached = covered_in_partitions(demand_xy, xy(opened), opened["reach_value"].to_numpy(float))
    return before, before | reached


# --------------------------------------------------------------------------- writing


def write_outputs(
    result: RunResult, out_dir: str | Path, *, also: Callable[[Path], object] | None = None
) -> Path:
    """Write every output into ``out_dir``, replacing what was there only once all are done.

    ``also(folder)`` writes further files (the map) into the new folder before it is moved
    into place, so they are replaced together with the others or not at all. ``out_dir`` is
    replaced only when it is empty or a carecheck output folder (:mod:`carecheck.outdir`); the
    caller holds its lock.
    """

    def write(folder: Path) -> None:
        _write_all(result, folder)
        if also is not None:
            also(folder)

    return write_folder(Path(out_dir), write)


def _write_all(result: RunResult, folder: Path) -> None:
    document = result.to_json()
    (folder / "result.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False), encoding="utf-8"
    )
    _write_geojson(result, folder / "selected_sites.geojson")
    write_csv(result.demand, folder / "demand_coverage.csv")
    if result.reach_areas is not None and len(result.reach_areas):
        areas = result.reach_areas.copy()
        areas["geometry"] = areas.geometry.set_precision(1e-6)
        (folder / "reach_areas.geojson").write_text(
            areas.to_json(ensure_ascii=False, drop_id=True), encoding="utf-8"
        )


def _write_geojson(result: RunResult, path: Path) -> None:
    selected = result.selected
    features = []
    for row in selected.drop(columns=["x", "y"]).to_dict(orient="records"):
        properties = {k: json_value(v) for k, v in row.items() if k not in ("lon", "lat")}
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
                "properties": properties,
            }
        )
    document = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")


# --------------------------------------------------------------------------- report.md


def _n(value: object, digits: int = 0) -> str:
    if not isinstance(value, int | float | np.number) or not np.isfinite(float(value)):
        return "–"
    return f"{float(value):,.{digits}f}"


def _share(part: float, total: float) -> str:
    return f"{part / total:.1%}" if total else "–"


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return markdown_text(value)


def compare_documents(baseline: dict, other: dict) -> dict:
    """Coverage (total and per region), cost and sites of ``other`` beside ``baseline``.

    Both are ``result.json`` documents.
    """

    def pair(a: float | None, b: float | None) -> dict:
        return {"baseline": a, "this": b}

    base_cov, cov = baseline["coverage"], other["coverage"]
    types = [t for t in cov["types"] if t in base_cov["types"]]

    def after(block: dict, t: str) -> float:
        return block["types"][t]["covered_after"]

    base_regions = {r["region"]: r for r in base_cov["by_region"]}
    by_region = [
        {
            "region": block["region"],
            "demand_total": block["demand_total"],
            "types": {
                t: pair(after(base_regions[block["region"]], t), after(block, t)) for t in types
            },
        }
        for block in cov["by_region"]
        if block["region"] in base_regions
    ]

    def keys(document: dict) -> set[str]:
        return {f"{s['type']}:{s['id']}" for s in document["selected"]}

    mine, theirs = keys(other), keys(baseline)
    return {
        "baseline": baseline["scenario"],
        "baseline_title": baseline.get("title"),
        "baseline_file": baseline.get("scenario_file"),
        "this": other["scenario"],
        "demand_total": pair(base_cov["demand_total"], cov["demand_total"]),
        "objective": pair(baseline.get("objective"), other.get("objective")),
        "total_cost": pair(baseline.get("total_cost"), other.get("total_cost")),
        "sites_opened": pair(len(baseline["selected"]), len(other["selected"])),
        "types": {t: pair(after(base_cov, t), after(cov, t)) for t in types},
        "by_region": by_region,
        "sites": {
            "common": len(mine & theirs),
            "only_baseline": sorted(theirs - mine),
            "only_this": sorted(mine - theirs),
        },
    }


def comparison_markdown(comparison: dict) -> str:
    """A comparison of two runs as a Markdown document (for ``carecheck compare``)."""
    title = f"# `{comparison['this']}` against `{comparison['baseline']}`"
    total = comparison["demand_total"]["this"]
    lines = _comparison_lines(comparison, total)[1:]  # drop the section heading
    sites = comparison["sites"]
    lines += [
        "Sites only in the baseline: "
        + (", ".join(map(markdown_text, sites["only_baseline"])) or "none"),
        "",
        "Sites only here: " + (", ".join(map(markdown_text, sites["only_this"])) or "none"),
        "",
    ]
    return "\n".join([title, *lines])


def _signed(value: float) -> str:
    return f"{value:+,.0f}"


def _comparison_lines(comparison: dict, total: float) -> list[str]:
    name = comparison["baseline"]
    lines = [
        f"## Against `{name}`",
        "",
        f"What this scenario's constraints change compared with `{name}`"
        + (
            f" ({markdown_text(comparison['baseline_title'])})"
            if comparison.get("baseline_title")
            else ""
        )
        + ": elderly covered after each plan, and the difference.",
        "",
        f"| type | {name} | this scenario | difference |",
        "|---|---:|---:|---:|",
    ]
    for t, v in comparison["types"].items():
        lines.append(
            f"| {t} | {_n(v['baseline'])} ({_share(v['baseline'], total)}) | {_n(v['this'])} "
            f"({_share(v['this'], total)}) | {_signed(v['this'] - v['baseline'])} |"
        )
    cost = comparison["total_cost"]
    lines += [
        "",
        f"Cost: {_n(cost['baseline'], 1)} → {_n(cost['this'], 1)}. Sites in common: "
        f"{comparison['sites']['common']}; only in `{name}`: "
        f"{len(comparison['sites']['only_baseline'])}; only here: "
        f"{len(comparison['sites']['only_this'])}.",
        "",
    ]
    if comparison["by_region"]:
        types = list(comparison["types"])
        lines += [
            "| region | elderly | "
            + " | ".join(f"{t}: {name} → this (difference)" for t in types)
            + " |",
            "|---|---:|" + "---|" * len(types),
        ]
        for block in comparison["by_region"]:
            cells = []
            for t in types:
                v = block["types"][t]
                cells.append(
                    f"{_share(v['baseline'], block['demand_total'])} → "
                    f"{_share(v['this'], block['demand_total'])} "
                    f"({_signed(v['this'] - v['baseline'])})"
                )
            lines.append(
                f"| {_cell(block['region'])} | {_n(block['demand_total'])} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    return lines
