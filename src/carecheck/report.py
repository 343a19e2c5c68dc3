"""Turn a solved plan into the output contract, and write the files atomically.

``result.json``, ``selected_sites.geojson``, ``demand_coverage.csv`` (UTF-8 with BOM, for Excel
on Chinese Windows) and ``report.md`` are written into a temporary folder beside the target
and moved into place only when all are complete.
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
    "report.md",
)


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
    (folder / "report.md").write_text(render_report(result, document), encoding="utf-8")
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


def _beds_lines(beds: dict) -> list[str]:
    nursing = (
        f", of which {_n(beds['nursing_need'])} nursing beds ({beds['nursing_share']:.0%})"
        if beds.get("nursing_need") is not None
        else ""
    )
    lines = [
        "## Beds",
        "",
        f"Bed need at {beds['per_1000']:g} per 1,000 elderly: {_n(beds['need'])}{nursing}. "
        f"Beds: {_n(beds['beds_before'])} → {_n(beds['beds_after'])} "
        f"({beds['beds_per_1000_before']:.1f} → {beds['beds_per_1000_after']:.1f} per 1,000). "
        f"Need served by beds within reach (no site beyond its beds): "
        f"{_n(beds['served_before'])} → {_n(beds['served_after'])}; unmet after the plan: "
        f"**{_n(beds['unmet_after'])}**.",
        "",
    ]
    if beds["by_region"]:
        lines += [
            "| region | elderly | bed need | beds per 1,000 before → after | need served before "
            "→ after | unmet after |",
            "|---|---:|---:|---|---|---:|",
        ]
        for block in beds["by_region"]:
            per_before, per_after = block["beds_per_1000_before"], block["beds_per_1000_after"]
            lines.append(
                f"| {_cell(block['region'])} | {_n(block['elderly'])} | {_n(block['need'])} | "
                f"{_n(per_before, 1)} → {_n(per_after, 1)} | {_n(block['served_before'])} → "
                f"{_n(block['served_after'])} | {_n(block['need'] - block['served_after'])} |"
            )
        if beds.get("sites_without_region"):
            lines.append("")
            lines.append(
                f"{beds['sites_without_region']} bed site(s) have no region column and are "
                "left out of the per-region beds."
            )
        lines.append("")
    return lines


def _network_lines(network: dict) -> list[str]:
    lines = [
        "## Road network",
        "",
        f"{network['nodes']:,} nodes, {network['edges']:,} segments, "
        f"{network['components']:,} connected component(s) (the largest holds "
        f"{network['largest_component_share']:.1%} of the nodes).",
        "",
    ]
    for key, what in (("unreachable_demand", "demand units"), ("unreachable_sites", "sites")):
        ids = network[key]
        if ids:
            shown = ", ".join(ids[:20]) + (f" … and {len(ids) - 20} more" if len(ids) > 20 else "")
            lines += [
                f"**{len(ids)} {what} lie more than {network['max_snap_m']:,.0f} m from any road "
                f"and are treated as unreachable:** {shown}",
                "",
            ]
    return lines


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


def render_report(result: RunResult, document: dict) -> str:
    """The planner's Markdown summary."""
    scenario = result.scenario
    coverage = result.coverage
    total = coverage["demand_total"]
    lines = [f"# {markdown_text(scenario.title or scenario.name)}", ""]
    lines += [
        f"Scenario `{scenario.name}` — objective {scenario.objective.kind}, solver "
        f"{scenario.solver.name}: **{result.status}**"
        + (f", gap {result.gap:.4%}" if result.gap is not None else "")
        + f", objective {_n(result.objective, 1)} (bound {_n(result.bound, 1)}).",
        "",
        *objectives.get(scenario.objective.kind).report_lines(result),
        "## Coverage before → after",
        "",
        "| type | reach | elderly covered before | after | share before → after | newly covered |",
        "|---|---|---:|---:|---|---:|",
    ]
    for name, spec in scenario.facilities.items():
        c = coverage["types"][name]
        reach = spec.reach_label()
        lines.append(
            f"| {name} | {reach} | {_n(c['covered_before'])} | {_n(c['covered_after'])} | "
            f"{_share(c['covered_before'], total)} → {_share(c['covered_after'], total)} | "
            f"{_n(c['covered_after'] - c['covered_before'])} |"
        )
    lines += ["", f"Elderly in the demand layer: {_n(total)}.", ""]
    lines += ["## Sites to open", ""]
    selected = result.selected
    for name in scenario.facilities:
        rows = selected[selected["type"] == name]
        beds = float(np.nansum(rows["beds"])) if len(rows) else 0.0
        cost = float(rows["cost"].sum()) if len(rows) else 0.0
        extra = f", {beds:,.0f} beds added" if beds else ""
        extra += f", cost {cost:,.1f}" if cost else ""
        lines += [f"### {name}: {len(rows)} site(s){extra}", ""]
        if not len(rows):
            lines += ["(none)", ""]
            continue
        lines += [
            "| id | name | tier | action | region | cost | beds | elderly newly covered | "
            "only this site |",
            "|---|---|---|---|---|---:|---:|---:|---:|",
        ]
        rows = rows.sort_values(
            ["tier", "new_covered_weight"], ascending=[True, False], na_position="last"
        )
        for row in rows.itertuples(index=False):
            lines.append(
                f"| {_cell(row.id)} | {_cell(row.name)} | {_cell(row.tier)} | "
                f"{_cell(row.action)} | {_cell(row.region)} | {_n(row.cost, 1)} | "
                f"{_n(row.beds)} | {_n(row.new_covered_weight)} | "
                f"{_n(row.unique_covered_weight)} |"
            )
        lines.append("")
    if scenario.constraints.budget is not None or result.total_cost:
        budget = scenario.constraints.budget
        lines += [
            f"Total cost of opened sites: {_n(result.total_cost, 1)}"
            + (f" of a budget of {_n(budget, 1)}." if budget is not None else "."),
            "",
        ]
    if coverage["by_region"]:
        names = list(scenario.facilities)
        lines += ["## By region", ""]
        header = "| region | elderly | " + " | ".join(f"{n} before → after" for n in names) + " |"
        lines += [header, "|---|---:|" + "---|" * len(names)]
        for block in coverage["by_region"]:
            cells = [
                f"{_share(block['types'][n]['covered_before'], block['demand_total'])} → "
                f"{_share(block['types'][n]['covered_after'], block['demand_total'])}"
                for n in names
            ]
            lines.append(
                f"| {_cell(block['region'])} | {_n(block['demand_total'])} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    if result.comparison is not None:
        lines += _comparison_lines(result.comparison, total)
    if result.network is not None:
        lines += _network_lines(result.network)
    if result.beds is not None:
        lines += _beds_lines(result.beds)
    size = result.model_size
    lines += [
        "## How this was computed",
        "",
        f"- Demand units: {size['demand_units']:,} ({size['demand_rows_after_reduction']:,} "
        f"model rows after merging identical reach sets); candidates: {size['candidates']:,} "
        f"({size['candidates_after_reduction']:,} after reductions).",
        f"- MILP: {size['variables']:,} variables, {size['constraints']:,} constraints, "
        f"{size['nonzeros']:,} nonzeros; solver {scenario.solver.name}, time limit "
        f"{scenario.solver.time_limit_s} s, relative gap {scenario.solver.mip_gap}.",
        "- Coverage: demand is reached when its distance to a site (straight line, or along the "
        "roads for reach by road or travel time; the walk to and from the road included) is "
        f"≤ the reach of the site's tier; working CRS {document['crs']}.",
        "- Verified independently by brute-force distances: "
        + (
            "all constraints and coverage figures check out."
            if result.verification.ok
            else "PROBLEMS: " + "; ".join(result.verification.problems)
        ),
        "- Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()),
        "",
        *_check_lines(document),
        *_source_lines(document),
    ]
    return "\n".join(lines)


def _check_lines(document: dict) -> list[str]:
    """Sites opened for nothing (with the fix) and elderly no candidate can reach."""
    checks = document.get("plan_checks") or {}
    lines: list[str] = []
    for name, ids in (checks.get("idle_sites") or {}).items():
        if ids:
            lines.append(
                f"- {markdown_text(name)}: {len(ids)} opened site(s) add no one — everyone "
                f"they reach is covered anyway ({', '.join(map(markdown_text, ids))}). The count "
                "forced them open; `max_count` instead of `count` would leave them out."
            )
    for name, lost in (checks.get("unreachable") or {}).items():
        if lost["weight"] > 0:
            regions = ", ".join(f"{markdown_text(r)} {_n(w)}" for r, w in lost["by_region"].items())
            lines.append(
                f"- {markdown_text(name)}: {_n(lost['weight'])} elderly in {lost['units']:,} "
                "demand unit(s) are out of reach of every candidate and existing facility: no "
                "plan of these candidates can cover them" + (f" ({regions})." if regions else ".")
            )
    if not lines:
        return []
    return ["## What the plan cannot change", "", *lines, ""]


def _source_lines(document: dict) -> list[str]:
    """The data sources: each layer's file, rows, CRS and coordinate conversion."""
    layers = document.get("layers") or {}
    if not layers:
        return []
    lines = [
        "## Data sources",
        "",
        "| layer | file | rows read → kept | CRS | coordinates | notes |",
        "|---|---|---:|---|---|---|",
    ]
    for role, source in layers.items():
        place = source["path"] + "".join(
            f" ({k} {source[k]})" for k in ("sheet", "layer") if source.get(k)
        )
        coords = source["coords"] + (" → WGS84" if source.get("converted_to") else "")
        notes = "; ".join(
            ([f"encoding {source['encoding']}"] if source.get("encoding") else [])
            + list(source.get("notes", []))
        )
        lines.append(
            f"| {_cell(role)} | {_cell(place)} | {source['rows_read']:,} → "
            f"{source['rows_kept']:,} | {_cell(source['crs'])} | {_cell(coords)} | "
            f"{_cell(notes) if notes else '–'} |"
        )
    return [*lines, ""]
