"""Commands on a finished run's folder: read its result, compare two runs, verify the files
against their inputs and a fresh solve, and redraw the map."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from carecheck import objectives
from carecheck.config import Scenario, load_scenario
from carecheck.data import Layers, load_layers
from carecheck.errors import DataError
from carecheck.outdir import fingerprint, read_result
from carecheck.pipeline import input_files, run_scenario
from carecheck.plans import check_plan
from carecheck.textsafe import from_spreadsheet_cell
from carecheck.verify import Verification

if TYPE_CHECKING:
    import geopandas as gpd


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

    Parameters
    ----------
    out_dir
        The run's output folder (holding ``result.json``).
    scenario
        The scenario file, for a folder moved away from it (default: the one recorded,
        relative to the folder where possible).
    solve
        Also solve afresh to check the claimed status and bound (default True).

    Returns
    -------
    Verification
        ``ok`` when every check holds; ``problems`` lists each one that does not.

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
) -> list[Path]:
    """Redraw a finished run's map pages, printable map, workbook and report from its files,
    without solving again (:func:`carecheck.deliverables.redraw`).

    The region polygons come from the run's scenario when that file is still there, else from
    the run's ``plan.gpkg``. ``lang`` (zh or en) redraws them in that language (None: the
    run's). ``offline`` is ignored: ``map.html`` is always self-contained.

    Returns
    -------
    list[Path]
        The files written.
    """
    from carecheck.deliverables import redraw

    del offline

    def regions_from(document: dict) -> gpd.GeoDataFrame | None:
        from carecheck.data import load_regions

        scenario_file = document.get("scenario_file")
        if not scenario_file or not Path(scenario_file).exists():
            return None
        loaded = load_scenario(scenario_file)
        return load_regions(loaded.regions) if loaded.regions is not None else None

    return redraw(out_dir, regions_from=regions_from, lang=lang)
