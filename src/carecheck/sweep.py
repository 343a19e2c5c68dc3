"""Scenario sweeps: many variants of a plan, each an independent run, on a local pool or Dask.

A sweep file names a base scenario and either a parameter grid (any scenario key by its dotted
path) or a list of scenarios. Each run gets its own output folder and is keyed by a hash of the
resolved scenario and the bytes of its input files: running the sweep again skips runs already
complete. A failing run is recorded with its error and does not stop the others; a worker lost
mid-run is retried (a new local pool, or Dask's own rescheduling and ``retries``).

The sweep writes ``sweep.csv`` (one tidy row per run: parameters → covered weight per type,
cost, status, gap, time), ``sweep.md`` and ``sweep.png`` (the main trade-off).
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from carecheck.config import NAME_PATTERN, Scenario, read_yaml, scenario_from_dict
from carecheck.errors import CarecheckError, InfeasibleError, ScenarioError
from carecheck.outdir import MARKER, MARKER_TEXT
from carecheck.textsafe import markdown_text, write_csv

KEY_FILE = ".sweep-key"
RECORD_FILE = ".sweep-record.json"
FINAL = ("optimal", "time_limit", "infeasible")  # outcomes a rerun keeps; errors run again


class SweepSpec(BaseModel):
    """The sweep file: a base scenario and a grid, or a list of scenarios."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    base: Path | None = None
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    scenarios: list[Path] = Field(default_factory=list)
    out: Path | None = None
    map: bool = False
    plot: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _grid_or_list(self) -> SweepSpec:
        if bool(self.grid) == bool(self.scenarios):
            raise ValueError("give `grid` (with `base`) or `scenarios`, not both or neither")
        if self.grid and self.base is None:
            raise ValueError("`grid` needs `base`: the scenario file the grid varies")
        empty = [k for k, v in self.grid.items() if not v]
        if empty:
            raise ValueError(f"grid values must be non-empty lists (empty: {empty})")
        return self


@dataclass(frozen=True)
class Job:
    """One run: a scenario as a plain dict (paths absolute), where to write, its key."""

    run_id: str
    params: dict
    scenario: dict
    out_dir: str
    key: str
    write_map: bool


Runner = Callable[[Job], dict]


def load_sweep(path: str | Path) -> tuple[SweepSpec, Path]:
    """Read and validate a sweep file; returns it and its folder."""
    path = Path(path)
    data, problems = read_yaml(path, what="sweep")  # bounded: duplicate keys, aliases, size
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            problems
            + [
                f"{path} → {'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
        ) from None
    if problems:
        raise ScenarioError(problems)
    return spec, path.resolve().parent


def _set_path(data: dict, dotted: str, value: Any, where: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        if not isinstance(node, dict) or key not in node:
            raise ScenarioError([f"{where}: grid key {dotted!r}: {key!r} is not in the scenario"])
        node = node[key]
    if not isinstance(node, dict):
        raise ScenarioError([f"{where}: grid key {dotted!r} does not name a mapping key"])
    if keys[-1].startswith("count") or keys[-1].endswith("_count"):
        for other in ("count", "min_count", "max_count"):
            if other != keys[-1]:
                node.pop(other, None)
    node[keys[-1]] = value


def _absolute_paths(data: dict, folder: Path) -> dict:
    """The scenario dict with every file path made absolute (runs happen elsewhere)."""
    data = copy.deepcopy(data)

    def fix(node: Any) -> None:
        if isinstance(node, dict) and isinstance(node.get("path"), str):
            node["path"] = str((folder / node["path"]).resolve())

    fix(data.get("demand"))
    fix(data.get("network"))
    fix(data.get("regions"))
    for facility in (data.get("facilities") or {}).values():
        if isinstance(facility, dict):
            fix(facility.get("candidates"))
            fix(facility.get("existing"))
    if isinstance(data.get("compare_with"), str):
        data["compare_with"] = str((folder / data["compare_with"]).resolve())
    return data


def _read_yaml(path: Path) -> dict:
    data, problems = read_yaml(path, what="scenario")
    if problems:
        raise ScenarioError(problems)
    if not isinstance(data, dict):
        raise ScenarioError([f"{path}: not a scenario (expected a mapping)"])
    return data


_FILE_HASHES: dict[tuple[str, float, int], str] = {}


def _file_hash(path: str) -> str:
    stat = os.stat(path)
    memo = (path, stat.st_mtime, stat.st_size)
    if memo not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[memo] = digest.hexdigest()
    return _FILE_HASHES[memo]


def run_key(scenario: Scenario, data: dict) -> str:
    """Hash of the resolved scenario and the bytes of every input file it reads."""
    files = sorted({str(p) for p in _input_files(scenario)})
    payload = json.dumps(
        {"scenario": data, "files": {f: _file_hash(f) for f in files}},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20]


def _input_files(scenario: Scenario) -> Iterable[Path]:
    yield scenario.demand.path
    for facility in scenario.facilities.values():
        yield facility.candidates.path
        if facility.existing is not None:
            yield facility.existing.path
    if scenario.network is not None:
        yield scenario.network.path
    if scenario.regions is not None:
        yield scenario.regions.path


def plan_jobs(spec: SweepSpec, folder: Path, source: str = "sweep") -> tuple[list[Job], Path]:
    """Every run of the sweep, validated up front (a bad variant fails before any solve)."""
    out = (folder / spec.out).resolve() if spec.out else Path("outputs").resolve() / spec.name
    variants: list[tuple[dict, dict, Path]] = []
    if spec.grid:
        assert spec.base is not None
        base_path = (folder / spec.base).resolve()
        base = _read_yaml(base_path)
        keys = list(spec.grid)
        for values in itertools.product(*(spec.grid[k] for k in keys)):
            data = copy.deepcopy(base)
            for key, value in zip(keys, values, strict=True):
                _set_path(data, key, value, source)
            variants.append((dict(zip(keys, values, strict=True)), data, base_path.parent))
    else:
        for path in spec.scenarios:
            scenario_path = (folder / path).resolve()
            variants.append(
                ({"scenario": path.stem}, _read_yaml(scenario_path), scenario_path.parent)
            )
    jobs, problems = [], []
    for k, (params, data, base_folder) in enumerate(variants, start=1):
        run_id = f"run-{k:03d}"
        data = _absolute_paths(data, base_folder)
        data["name"] = f"{data.get('name', spec.name)}-{run_id}"
        data.pop("compare_with", None)  # each run stands alone in a sweep
        try:
            scenario = scenario_from_dict(data, source=f"{source} {run_id}", base_dir=Path("/"))
        except ScenarioError as exc:
            problems += exc.problems
            continue
        jobs.append(
            Job(
                run_id=run_id,
                params=params,
                scenario=data,
                out_dir=str(out / run_id),
                key=run_key(scenario, data),
                write_map=spec.map,
            )
        )
    if problems:
        raise ScenarioError(problems)
    return jobs, out


def run_job(job: Job) -> dict:
    """Run one variant (in a worker); never raises for a failing scenario: records the error."""
    from carecheck.pipeline import run_scenario

    start = time.perf_counter()
    record: dict = {"run": job.run_id, **job.params}
    try:
        scenario = scenario_from_dict(job.scenario, source=job.run_id, base_dir=Path("/"))
        result = run_scenario(scenario, out=job.out_dir, compare=False, map_html=job.write_map)
    except InfeasibleError as exc:
        record.update(status="infeasible", error="; ".join(exc.diagnosis))
    except CarecheckError as exc:
        record.update(status="error", error=str(exc).splitlines()[0])
    except Exception as exc:  # a bug in one run must not stop the sweep
        record.update(status="error", error=f"{type(exc).__name__}: {exc}")
    else:
        record.update(_result_fields(result.to_json()))
    record["seconds"] = round(time.perf_counter() - start, 3)
    if record["status"] in FINAL:
        folder = Path(job.out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / MARKER).exists():  # a failed run's folder: the next run may replace it
            (folder / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        (folder / RECORD_FILE).write_text(
            json.dumps(record, ensure_ascii=False, default=str), encoding="utf-8"
        )
        (folder / KEY_FILE).write_text(job.key, encoding="utf-8")
    return record


def _result_fields(document: dict) -> dict:
    fields = {
        "status": document["status"],
        "objective": document["objective"],
        "gap": document["gap"],
        "total_cost": document["total_cost"],
        "sites": len(document["selected"]),
        "error": None,
    }
    for name, cov in document["coverage"]["types"].items():
        fields[f"covered_{name}"] = cov["covered_after"]
    return fields


def _completed(job: Job) -> dict | None:
    """The record of a run already complete with the same key, else None."""
    folder = Path(job.out_dir)
    try:
        if (folder / KEY_FILE).read_text(encoding="utf-8") != job.key:
            return None
        record = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return {**record, "reused": True}


def run_sweep(
    spec: SweepSpec,
    folder: Path,
    *,
    scheduler: str | None = None,
    client: Any = None,
    workers: int | None = None,
    runner: Runner | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, Path]:
    """Run every variant not yet complete and write the sweep table, report and plot.

    ``scheduler`` is a Dask scheduler address (or pass a ``client``); otherwise a local pool of
    ``workers`` processes (default: all cores). Returns the table and the sweep folder.
    """
    jobs, out = plan_jobs(spec, folder)
    out.mkdir(parents=True, exist_ok=True)
    call: Runner = runner or run_job
    records: dict[str, dict] = {}
    todo = []
    for job in jobs:
        done = _completed(job)
        if done is not None:
            records[job.run_id] = done
        else:
            todo.append(job)
    if progress:
        progress(f"{len(records)} run(s) already complete, {len(todo)} to run")
    try:
        if scheduler is not None or client is not None:
            _run_dask(todo, call, records, scheduler=scheduler, client=client, progress=progress)
        else:
            _run_local(
                todo, call, records, workers=workers or os.cpu_count() or 1, progress=progress
            )
    finally:  # also on Ctrl-C: what is complete is kept and tabled
        table = pd.DataFrame([records[j.run_id] for j in jobs if j.run_id in records])
        write_sweep(table, out, spec)
    return table, out


def _run_local(
    jobs: list[Job],
    call: Runner,
    records: dict,
    *,
    workers: int,
    progress: Callable[[str], None] | None,
    attempts: int = 3,
) -> None:
    if workers <= 1 or len(jobs) <= 1:  # serial: in this process, no pool to start
        for job in jobs:
            records[job.run_id] = call(job)
            if progress:
                progress(f"{len(records)} run(s) done")
        return
    # import the pipeline (geopandas, PuLP, the file reader) once here: forked workers inherit
    # it instead of paying the imports again, which would dominate short runs
    import pulp  # noqa: F401
    import pyogrio  # noqa: F401

    import carecheck.pipeline  # noqa: F401

    pending = list(jobs)
    for _ in range(attempts):
        if not pending:
            return
        lost: list[Job] = []
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(pending))) as pool:
            futures = {pool.submit(call, job): job for job in pending}
            for future in cf.as_completed(futures):
                job = futures[future]
                try:
                    records[job.run_id] = future.result()
                except cf.process.BrokenProcessPool:
                    lost.append(job)  # the worker died: run it again in a fresh pool
                if progress:
                    progress(f"{len(records)} run(s) done")
        pending = lost
    for job in pending:
        records[job.run_id] = {
            "run": job.run_id,
            **job.params,
            "status": "error",
            "error": "worker lost repeatedly",
        }


def _run_dask(
    jobs: list[Job],
    call: Runner,
    records: dict,
    *,
    scheduler: str | None,
    client: Any,
    progress: Callable[[str], None] | None,
) -> None:
    from dask.distributed import Client, as_completed

    own = client is None
    client = client if client is not None else Client(scheduler)
    try:
        futures = {
            client.submit(
                call, job, key=f"carecheck-{job.run_id}-{job.key}", retries=2, pure=False
            ): job
            for job in jobs
        }
        for future in as_completed(list(futures)):
            job = futures[future]
            try:
                records[job.run_id] = future.result()
            except Exception as exc:  # the task failed even after its retries
                records[job.run_id] = {
                    "run": job.run_id,
                    **job.params,
                    "status": "error",
                    "error": f"{type(exc).__name__}: {exc}",
                }
            if progress:
                progress(f"{len(records)} run(s) done")
    finally:
        if own:
            client.close()


def write_sweep(table: pd.DataFrame, out: Path, spec: SweepSpec) -> None:
    """``sweep.csv`` (UTF-8 with BOM), ``sweep.md`` and ``sweep.png``."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(table, out / "sweep.csv")
    (out / "sweep.md").write_text(_markdown(table, spec), encoding="utf-8")
    if len(table):
        _plot(table, out / "sweep.png", spec)


def _markdown(table: pd.DataFrame, spec: SweepSpec) -> str:
    lines = [f"# Sweep `{spec.name}`", ""]
    if not len(table):
        return "\n".join([*lines, "No run has completed.", ""])
    statuses = table["status"].value_counts().to_dict()
    lines += [
        f"{len(table)} run(s): " + ", ".join(f"{n} {s}" for s, n in statuses.items()) + ".",
        "",
    ]
    columns = [c for c in table.columns if c not in ("reused",)]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for record in table[columns].to_dict(orient="records"):
        cells = []
        for value in record.values():
            if isinstance(value, float):
                cells.append(
                    "–"
                    if pd.isna(value)
                    else f"{value:,.4g}"
                    if abs(value) < 1000
                    else f"{value:,.0f}"
                )
            else:
                cells.append("–" if value is None else markdown_text(value))
        lines.append("| " + " | ".join(cells) + " |")
    errors = table[table["status"] != "optimal"] if "status" in table else table.iloc[0:0]
    if len(errors):
        lines += ["", "## Runs that did not solve to optimality", ""]
        for record in errors.to_dict(orient="records"):
            lines.append(f"- {record['run']}: {record['status']} — {record.get('error') or ''}")
    return "\n".join([*lines, ""])


def _plot(table: pd.DataFrame, path: Path, spec: SweepSpec) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = list(spec.grid) or ["run"]
    x = spec.plot.get("x", params[0])
    y = spec.plot.get("y", "objective")
    ok = table[table["status"].isin(["optimal", "time_limit"])] if "status" in table else table
    if x not in ok or y not in ok or not len(ok):
        return
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    series = [p for p in params if p != x][:1]
    groups = ok.groupby(series[0]) if series else [("", ok)]
    for label, group in groups:
        group = group.sort_values(x)
        ax.plot(
            group[x].astype(str) if group[x].dtype == object else group[x],
            group[y],
            marker="o",
            label=f"{series[0]} = {label}" if series else None,
        )
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"sweep {spec.name}")
    ax.grid(alpha=0.3)
    if series:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
