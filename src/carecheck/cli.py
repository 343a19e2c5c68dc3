"""The ``carecheck`` command line: a thin shell over the Python API, and its one error boundary.

Exit codes: 0 done; 1 unexpected error (traceback in a log file); 2 bad input; 3 infeasible
scenario (with a diagnosis); 4 no plan found within the time limit; 5 verification failed;
130 interrupted.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from carecheck import __version__
from carecheck.errors import CarecheckError, ScenarioError
from carecheck.units import money

if TYPE_CHECKING:  # pragma: no cover
    from carecheck.result import RunResult

# Each command imports what it uses when it runs: `carecheck --help`, `--version` and
# `validate` load no solver, map, plot or cluster library (tests/test_structure.py checks it).

# markup off: titles, names and paths are printed literally ("[draft] 宁波规划" stays as it is)
console = Console(highlight=False, soft_wrap=True, markup=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
_PATH = click.Path(path_type=Path)


class _FiniteFloatRange(click.FloatRange):
    """A FloatRange that refuses inf and nan (nan passes every range comparison)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="carecheck")
def cli() -> None:
    """Site elderly-care facilities so that the most older people are within reach of care."""


@cli.command()
@click.argument("scenario", type=_PATH)
@click.option("--out", type=_PATH, default=None, help="Output folder [default: outputs/<name>].")
@click.option(
    "--solver",
    type=click.Choice(["cbc", "highs"]),
    default=None,
    help="MILP solver (overrides the scenario).",
)
@click.option(
    "--time-limit",
    type=_FiniteFloatRange(min=0, min_open=True),
    default=None,
    help="Solver time limit in seconds.",
)
@click.option(
    "--gap",
    type=_FiniteFloatRange(0, 1, max_open=True),
    default=None,
    help="Relative MIP gap at which to stop (0 = prove optimality).",
)
@click.option("--no-map", is_flag=True, help="Do not write map.html (large batch runs).")
@click.option(
    "--data-only",
    is_flag=True,
    help="Write result.json and the data files only: no GIS layers, maps, workbook or report "
    "(batch runs, benchmarks).",
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default=None,
    help="Language of every output [default: the scenario's lang, else zh].",
)
@click.option(
    "--shapefile",
    is_flag=True,
    default=None,
    help="Also write the GIS layers as Shapefiles (shapefiles/).",
)
@click.option("--offline", is_flag=True, default=None, hidden=True)  # always offline now
def run(
    scenario: Path,
    out: Path | None,
    solver: str | None,
    time_limit: float | None,
    gap: float | None,
    no_map: bool,
    data_only: bool,
    lang: str | None,
    shapefile: bool | None,
    offline: bool | None,
) -> None:
    """Solve SCENARIO, verify the plan and write the outputs."""
    from carecheck.pipeline import run_scenario

    with console.status("loading scenario") as status:
        result = run_scenario(
            scenario,
            out=out,
            solver=solver,
            time_limit_s=time_limit,
            mip_gap=gap,
            map_html=False if no_map else None,
            handout=not data_only,
            map_lang=lang,
            shapefile=shapefile,
            progress=lambda stage: status.update(Text(stage)),
        )
    try:
        _summary(result)
    except Exception as exc:  # the plan is written and verified: exit 0 all the same
        errors.print(
            f"the plan is complete in {result.out_dir}, but its summary could not be shown "
            f"({type(exc).__name__}: {exc})"
        )


@cli.command(name="map")
@click.argument("out_dir", type=_PATH)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default=None,
    help="Language [default: the run's].",
)
@click.option("--offline", is_flag=True, default=None, hidden=True)  # always offline now
def map_command(out_dir: Path, lang: str | None, offline: bool | None) -> None:
    """Redraw OUT_DIR's maps, workbook and report from a finished run, without solving again."""
    from carecheck.finished import map_outputs

    del offline
    paths = map_outputs(out_dir, lang=lang)
    for path in paths:
        console.print(f"written: {path}", markup=False)


def _summary(result: RunResult) -> None:
    coverage = result.coverage
    total = coverage["demand_total"]
    table = Table(title=f"{result.scenario.title or result.scenario.name}")
    table.add_column("type")
    table.add_column("opened", justify="right")
    table.add_column("covered before", justify="right")
    table.add_column("covered after", justify="right")
    table.add_column("share", justify="right")
    for name in result.scenario.facilities:
        c = coverage["types"][name]
        opened = int((result.selected["type"] == name).sum())
        share = (
            f"{c['covered_before'] / total:.1%} → {c['covered_after'] / total:.1%}"
            if total
            else "–"
        )
        table.add_row(
            name, str(opened), f"{c['covered_before']:,.0f}", f"{c['covered_after']:,.0f}", share
        )
    console.print(table)
    gap = f", gap {result.gap:.4%}" if result.gap is not None else ""
    line = Text("status ")
    line.append(result.status, style="bold")
    from carecheck import objectives

    spec = result.scenario.objective
    label, is_money = objectives.get(spec.kind).value_label(spec.model_dump(mode="json"), "en")
    value = (
        money(result.objective, result.scenario.cost_unit, "en")
        if is_money
        else f"{result.objective:,.1f}"
    )
    line.append(
        f"{gap}; {label}: {value}; "
        f"verified: {'yes' if result.verification.ok else 'NO'}; "
        f"total {sum(result.timings.values()):.2f} s"
    )
    console.print(line)
    if result.out_dir is not None:
        console.print(f"outputs in {result.out_dir}")


@cli.command()
@click.argument("scenarios", type=_PATH, nargs=-1, required=True)
def validate(scenarios: tuple[Path, ...]) -> None:
    """Check scenario files and their data without solving."""
    from carecheck.config import load_scenario
    from carecheck.data import load_layers

    bad = 0
    for path in scenarios:
        try:
            scenario = load_scenario(path)
            layers = load_layers(scenario)
        except CarecheckError as exc:
            bad += 1
            errors.print(Text.assemble(("✗", "red"), f" {path}"))
            errors.print(str(exc), markup=False)
            continue
        n_cand = sum(len(f.candidates) for f in layers.facilities.values())
        console.print(
            f"✓ {path}: {len(layers.demand):,} demand units, {n_cand:,} candidates, "
            f"{len(scenario.facilities)} type(s), working CRS {layers.crs.to_string()}",
            markup=False,
        )
    if bad:
        raise click.exceptions.Exit(2)


@cli.command()
@click.argument("out_dir", type=_PATH)
@click.option(
    "--scenario",
    type=_PATH,
    default=None,
    help="The run's scenario file, for a folder moved away from it [default: the recorded one].",
)
@click.option(
    "--no-solve",
    is_flag=True,
    help="Skip the fresh solve that checks the claimed status and bound.",
)
def verify(out_dir: Path, scenario: Path | None, no_solve: bool) -> None:
    """Re-check OUT_DIR, a finished run: its inputs unchanged, its plan and every figure by
    an independent check, and its claimed optimum against a fresh solve."""
    from carecheck.finished import verify_outputs

    with console.status("verifying"):
        verification = verify_outputs(out_dir, scenario=scenario, solve=not no_solve)
    if verification.ok:
        checked = "" if no_solve else "; a fresh solve confirms its status and bound"
        console.print(
            f"✓ {out_dir}: inputs unchanged; every constraint and coverage figure checks "
            f"out{checked}"
        )
        return
    errors.print(f"✗ {out_dir}: verification failed", markup=False)
    for problem in verification.problems:
        errors.print(f"- {problem}", markup=False)
    raise click.exceptions.Exit(5)


@cli.command(name="frontier")
@click.argument("scenario", type=_PATH)
@click.option("--type", "type_name", default=None, help="Facility type whose count varies.")
@click.option("--counts", default=None, help="Counts: 0..40, 0..40..5 or 5,10,20.")
@click.option("--budgets", default=None, help="Budgets: 10000..80000..10000 or a list.")
@click.option(
    "--out", type=_PATH, default=None, help="Output folder [default: outputs/<name>-frontier]."
)
def frontier_command(
    scenario: Path,
    type_name: str | None,
    counts: str | None,
    budgets: str | None,
    out: Path | None,
) -> None:
    """Coverage against the number of sites of one type, or against the budget."""
    import numpy as np

    from carecheck.config import load_scenario
    from carecheck.frontier import axis_label, frontier, parse_series, write_frontier

    if (counts is None) == (budgets is None):
        raise click.UsageError("give --counts (with --type) or --budgets")
    if counts is not None and type_name is None:
        raise click.UsageError("--counts needs --type")
    loaded = load_scenario(scenario)
    series = parse_series(counts or budgets or "")
    with console.status("frontier") as status:
        table = frontier(
            loaded,
            type_name=type_name,
            counts=series if counts is not None else None,
            budgets=series if budgets is not None else None,
            progress=lambda stage: status.update(Text(stage)),
        )
    chosen: float | None
    lang = loaded.language
    if counts is not None:
        chosen = loaded.facilities[type_name or ""].count
        label = f"{type_name} sites"
        axis = axis_label("count", lang, type_name=type_name)
    else:
        chosen, label = loaded.constraints.budget, "budget"
        axis = axis_label("budget", lang, unit=loaded.cost_unit)
    folder = out if out is not None else Path("outputs") / f"{loaded.name}-frontier"
    title = loaded.title or loaded.name
    csv_path, png_path = write_frontier(
        table,
        folder,
        x_label=axis,
        chosen=chosen,
        title=f"{title}\n覆盖老年人数与{axis}"
        if lang == "zh"
        else f"{title}\ncoverage against {axis}",
        lang=lang,
        type_name=type_name if counts is not None else None,
    )
    covered = [c for c in table.columns if c.startswith("covered_")]
    shown = Table(title=f"{loaded.name}: coverage per type against {label}")
    columns = (label, "status", *(f"{c.removeprefix('covered_')} covered" for c in covered))
    for column in (*columns, "objective (weighted sum over types)", "added by step", "cost", "s"):
        shown.add_column(column, justify="right")
    for record in table.to_dict(orient="records"):
        step = float(record["added_by_step"])
        shown.add_row(
            f"{record['value']:g}",
            str(record["status"]),
            *(f"{float(record[c]):,.0f}" for c in covered),
            f"{record['objective']:,.0f}",
            "–" if np.isnan(step) else f"{step:+,.0f}",
            money(record["total_cost"], loaded.cost_unit, "en"),
            f"{record['seconds']:.2f}",
        )
    console.print(shown)
    sites_path = csv_path.with_name("frontier_sites.csv")
    console.print(f"written: {csv_path}, {sites_path}, {png_path}", markup=False)


@cli.command()
@click.argument("sweep_file", type=_PATH)
@click.option(
    "--scheduler",
    default=None,
    help="Address of a Dask scheduler (tcp://host:8786); default: a local pool.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local pool size [default: all cores]; 1 runs the variants one by one in this process.",
)
def sweep(sweep_file: Path, scheduler: str | None, workers: int | None) -> None:
    """Run a sweep of scenario variants (SWEEP_FILE: base + grid, or a list of scenarios)."""
    from carecheck.sweep import load_sweep, run_sweep

    spec, folder = load_sweep(sweep_file)
    with console.status("sweep") as status:
        table, out = run_sweep(
            spec,
            folder,
            scheduler=scheduler,
            workers=workers,
            progress=lambda stage: status.update(Text(stage)),
        )
    shown = Table(title=f"sweep {spec.name}: {len(table)} run(s)")
    columns = [c for c in table.columns if c not in ("error", "reused", "gap")]
    for column in columns:
        shown.add_column(column.split(".")[-1], justify="right")
    for record in table[columns].to_dict(orient="records"):
        shown.add_row(
            *[
                f"{v:,.0f}"
                if isinstance(v, float) and abs(v) >= 1000
                else f"{v:.4g}"
                if isinstance(v, float)
                else str(v)
                for v in record.values()
            ]
        )
    console.print(shown)
    failed = table[table["status"] != "optimal"] if "status" in table else table.iloc[0:0]
    for record in failed.to_dict(orient="records"):
        errors.print(f"{record['run']}: {record['status']}: {record.get('error')}", markup=False)
    console.print(
        f"written: {out / 'sweep.csv'}, {out / 'sweep.md'}, {out / 'sweep.png'}", markup=False
    )


@cli.command()
@click.argument("baseline", type=_PATH)
@click.argument("other", type=_PATH)
@click.option(
    "--markdown",
    "markdown",
    type=_PATH,
    default=None,
    help="Also write the comparison as Markdown to this file.",
)
def compare(baseline: Path, other: Path, markdown: Path | None) -> None:
    """Compare two finished runs: sites, coverage per type and region, cost."""
    from carecheck.finished import compare_outputs
    from carecheck.report import comparison_markdown

    comparison = compare_outputs(baseline, other)
    a, b = comparison["baseline"], comparison["this"]
    table = Table(title=f"{b} against {a}")
    for column in ("", a, b, "difference"):
        table.add_column(column, justify="right" if column else "left")

    def row(label: str, pair: dict, digits: int = 0) -> None:
        x, y = pair["baseline"], pair["this"]
        if x is None or y is None:
            table.add_row(label, str(x), str(y), "–")
            return
        table.add_row(label, f"{x:,.{digits}f}", f"{y:,.{digits}f}", f"{y - x:+,.{digits}f}")

    for t, pair in comparison["types"].items():
        row(f"{t} covered", pair)
    row("sites opened", comparison["sites_opened"])
    row("total cost", comparison["total_cost"], 1)
    row("objective", comparison["objective"], 1)
    console.print(table)
    if comparison["by_region"]:
        regions = Table(title="covered after the plan, by region")
        regions.add_column("region")
        for t in comparison["types"]:
            regions.add_column(f"{t}: {a} → {b}", justify="right")
        for block in comparison["by_region"]:
            cells = [
                f"{v['baseline']:,.0f} → {v['this']:,.0f} ({v['this'] - v['baseline']:+,.0f})"
                for v in block["types"].values()
            ]
            regions.add_row(str(block["region"]), *cells)
        console.print(regions)
    sites = comparison["sites"]
    console.print(
        f"sites in common: {sites['common']}; only in {a}: {len(sites['only_baseline'])}; "
        f"only in {b}: {len(sites['only_this'])}",
        markup=False,
    )
    if markdown is not None:
        markdown.write_text(comparison_markdown(comparison), encoding="utf-8")
        console.print(f"Markdown written to {markdown}", markup=False)


def log_folder() -> Path:
    """The per-user folder for error logs: %LOCALAPPDATA%\\carecheck\\Logs on Windows,
    ~/Library/Logs/carecheck on macOS, $XDG_STATE_HOME/carecheck (~/.local/state) elsewhere."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "carecheck" / "Logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "carecheck"
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "carecheck"


def _log_traceback() -> Path:
    """Write the traceback to a new, private file in :func:`log_folder` (never through a link:
    the folder must be a real folder of this user's, the file is created exclusively)."""
    folder = log_folder()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.is_symlink() or not folder.is_dir():
        raise OSError(f"{folder} is not a real folder")
    if hasattr(os, "getuid") and folder.stat().st_uid != os.getuid():
        raise OSError(f"{folder} belongs to another user")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    handle, name = tempfile.mkstemp(prefix=f"error-{stamp}-", suffix=".log", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as log:  # mkstemp: O_EXCL, mode 0600
        log.write(traceback.format_exc())
    return Path(name)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends a run as Ctrl-C does: temporary folders removed, workers stopped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every error into one message and an exit code."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = cli.main(args=argv, prog_name="carecheck", standalone_mode=False)
    except ScenarioError as exc:
        errors.print("Scenario problem(s):", markup=False)
        for problem in exc.problems:
            errors.print(f"- {problem}", markup=False)
        code = exc.exit_code
    except CarecheckError as exc:
        errors.print(str(exc), markup=False)
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        errors.print("interrupted", markup=False)
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = 2
    except KeyboardInterrupt:
        errors.print("interrupted", markup=False)
        code = 130
    except Exception as exc:  # the one boundary for bugs: one line, traceback in a log
        try:
            details = f"details: {_log_traceback()}"
        except OSError as log_error:
            details = f"no log written: {log_error}"
        errors.print(f"unexpected error: {type(exc).__name__}: {exc} ({details})")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
