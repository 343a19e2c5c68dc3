"""Run a scenario end to end: layers → reach → reductions → model → solve → verify → outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from carecheck import objectives
from carecheck.assemble import Progress, problem_from_layers, solver_options
from carecheck.config import Scenario, load_scenario
from carecheck.data import Layers, load_layers
from carecheck.errors import NoSolutionError, ScenarioError, VerificationError
from carecheck.model import Problem
from carecheck.objectives.base import Objective, Solved, Stages
from carecheck.outdir import fingerprint, locked, resolve_target
from carecheck.plans import beds_summary, check_plan, network_summary, reach_area_frame
from carecheck.result import RunResult
from carecheck.solve import Status, relative_gap
from carecheck.verify import Verification


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
    shapefile: bool | None = None,
    handout: bool = True,
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
    map_html
        Write ``map.html`` (None: the scenario's ``map.write``).
    map_lang
        The language of every output, ``zh`` or ``en`` (None: the scenario's ``lang``).
    map_offline
        Ignored: ``map.html`` is always self-contained (kept for older callers).
    shapefile
        Also write ``shapefiles/`` (None: the scenario's ``outputs.shapefile``).
    handout
        Write what a bureau hands on (``plan.gpkg``, the maps, ``plan.xlsx``, the reports);
        False writes ``result.json`` and the data files only (batch runs, benchmarks).

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
    del map_offline  # map.html is always self-contained
    if map_lang is not None:
        if map_lang not in ("zh", "en"):
            raise ScenarioError([f"map_lang: {map_lang!r} is not a language; use zh or en"])
        scenario = scenario.model_copy(update={"lang": map_lang})
    if shapefile is not None:
        outputs = scenario.outputs.model_copy(update={"shapefile": shapefile})
        scenario = scenario.model_copy(update={"outputs": outputs})
    draw = MapChoice(html=map_html, handout=handout)
    if not write:
        return _solve(scenario, None, compare, draw, progress)
    # refused before any solving when the folder may not be replaced; one run at a time
    out_dir = resolve_target(out if out is not None else Path("outputs") / scenario.name)
    with locked(out_dir):
        return _solve(scenario, out_dir, compare, draw, progress)


@dataclass(frozen=True)
class MapChoice:
    """Whether the run draws ``map.html`` (None: the scenario's ``map.write``)."""

    html: bool | None = None
    handout: bool = True  # False: result.json and the data files only


class _Clock(Stages):
    """Shows each stage as it begins and records its seconds in ``timings`` as it ends."""

    def __init__(self, progress: Progress | None) -> None:
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()
        self._progress = progress
        super().__init__(self._begin, self._end)

    def _begin(self, label: str) -> None:
        self._started = time.perf_counter()
        if self._progress:
            self._progress(label)

    def _end(self, key: str) -> None:
        now = time.perf_counter()
        self.timings[key] = now - self._started
        self._started = now


def _solve(
    scenario: Scenario,
    out_dir: Path | None,
    compare: bool,
    draw: MapChoice,
    progress: Progress | None,
) -> RunResult:
    """The run of :func:`run_scenario`, stage by stage; writes into ``out_dir`` unless None."""
    clock = _Clock(progress)
    inputs, layers = _load(scenario, clock)
    problem = _reach(scenario, layers, clock, progress)
    objective = objectives.get(scenario.objective.kind)
    solved = _optimise(scenario, layers, problem, objective, clock)
    result = _verify(scenario, layers, problem, objective, solved, clock)
    result = _with(result, inputs=inputs)
    if compare and scenario.compare_with is not None:
        result = _compare(result, clock)
    if out_dir is None:
        return result
    _write(result, out_dir, draw, clock)
    return _with(result, out_dir=out_dir)


def _load(scenario: Scenario, clock: Stages) -> tuple[list[dict], Layers]:
    """Stage load: the input files' fingerprints, then every layer read and checked."""
    clock.begin("load layers")
    inputs = input_fingerprints(scenario)
    layers = load_layers(scenario)
    clock.end("load")
    return inputs, layers


def _reach(scenario: Scenario, layers: Layers, clock: Stages, progress: Progress | None) -> Problem:
    """Stage reach: who each site reaches, as the array problem."""
    clock.begin("reach")
    problem, _ = problem_from_layers(scenario, layers, progress=progress)
    clock.end("reach")
    return problem


def _optimise(
    scenario: Scenario,
    layers: Layers,
    problem: Problem,
    objective: Objective,
    clock: Stages,
) -> Solved:
    """Stages reduce → build → start → solve, as the objective does them; refuses a scenario
    without a feasible plan (naming what to relax) and a run that found no plan in time."""
    options = solver_options(scenario)
    solved = objective.solve(scenario, layers, problem, options, clock)
    if solved.outcome.status is Status.INFEASIBLE:
        raise objective.infeasible(scenario, solved, options, clock)
    if solved.outcome.status is Status.NO_SOLUTION or solved.outcome.values is None:
        raise NoSolutionError(
            f"scenario {scenario.name}: the solver found no plan within "
            f"{options.time_limit_s} s; raise --time-limit"
        )
    return solved


def _verify(
    scenario: Scenario,
    layers: Layers,
    problem: Problem,
    objective: Objective,
    solved: Solved,
    clock: _Clock,
) -> RunResult:
    """Stage verify: the plan's tables, its exact value and bound, and the independent check;
    a plan the verifier disagrees with is never written."""
    from carecheck.report import coverage_tables, plan_checks

    opened = objective.decode(solved)
    outcome = solved.outcome
    clock.begin("verify")
    selected, coverage, demand_table, masks, total_cost = coverage_tables(
        scenario, layers, problem, opened
    )
    # the exact objective of the chosen sites (the solver's value carries float noise)
    value = objective.value(scenario, coverage, selected, outcome)
    bound = objective.bound(outcome, value)
    beds = beds_summary(scenario, layers, selected)
    verification = check_plan(
        scenario,
        layers,
        {t: selected.loc[selected["type"] == t, "id"].tolist() for t in scenario.facilities},
        coverage=coverage,
        objective=value,
        masks=masks,
        beds=beds,
    )
    clock.end("verify")
    if not verification.ok:
        raise VerificationError(verification.problems)
    clock.begin("reach areas")
    areas = reach_area_frame(scenario, layers, selected)
    clock.end("areas")
    return RunResult(
        scenario=scenario,
        status=outcome.status,
        objective=value,
        bound=bound,
        gap=relative_gap(value, bound),
        selected=selected,
        coverage=coverage,
        demand=_add_nearest(demand_table, verification, scenario),
        verification=verification,
        timings=clock.timings,
        model_size=solved.model_size,
        total_cost=total_cost,
        layers=layers,
        network=network_summary(scenario, layers),
        beds=beds,
        reach_areas=areas,
        checks=plan_checks(scenario, layers, problem, selected),
        padding=_padding(layers, solved),
    )


def _padding(layers: Layers, solved: Solved) -> dict | None:
    """The sites opened only to meet a count (model.pad_counts), by type, with the rule."""
    if not solved.padded:
        return None
    sites = {
        name: [str(i) for i in layers.facilities[name].candidates["id"].iloc[padded]]
        for name, padded in solved.padded.items()
    }
    return {"rule": "cheapest_then_order", "sites": sites}


def _compare(result: RunResult, clock: Stages) -> RunResult:
    """Stage baseline: the ``compare_with`` scenario solved (not written) and compared."""
    from carecheck.report import compare_documents

    scenario = result.scenario
    assert scenario.compare_with is not None
    clock.begin("solve the baseline scenario")
    baseline = run_scenario(
        scenario.compare_with, write=False, compare=False, solver=scenario.solver.name
    )
    result = _with(result, comparison=compare_documents(baseline.to_json(), result.to_json()))
    clock.end("baseline")
    return result


def _write(result: RunResult, out_dir: Path, draw: MapChoice, clock: Stages) -> None:
    """Stage write: every output file into a temporary folder, moved into place at the end:
    the data files (:mod:`carecheck.report`), then what a bureau hands on
    (:mod:`carecheck.deliverables`)."""
    from carecheck.deliverables import write_deliverables
    from carecheck.report import write_outputs

    clock.begin("write outputs")
    regions = result.layers.regions if result.layers is not None else None
    drawn = result.scenario.map.write if draw.html is None else draw.html

    def deliverables(folder: Path) -> None:
        write_deliverables(folder, regions=regions, map_html=drawn)

    # input paths are written relative to the output folder in result.json
    write_outputs(
        _with(result, out_dir=out_dir), out_dir, also=deliverables if draw.handout else None
    )
    clock.end("write")


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
