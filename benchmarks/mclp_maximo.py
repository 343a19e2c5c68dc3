"""Solve the 24 Máximo et al. MCLP instances with carecheck and compare with the published optima.

Data: ``../shared/benchdata/mclp-maximo`` (four cities, p = 50..100, one radius per city).
Reach is great-circle (law of cosines, R = 6,378,100 m, d ≤ r inclusive), built with
carecheck's KD-tree ``reach_matrix`` on 3-D sphere coordinates and an exact distance filter
(see ``_common.py``); the model is carecheck's array-level core: ``problem_from_reach`` →
``reduce_problem`` → ``build_milp`` → ``solve_milp``.

Usage (from the repository root)::

    python benchmarks/mclp_maximo.py                       # all 24 rows, 300 s each
    python benchmarks/mclp_maximo.py --solver highs --only NewYork --only Bronx/50
    python benchmarks/mclp_maximo.py --start-s 0 --lp-bound   # no starting plan; LP bound
    python benchmarks/mclp_maximo.py --threads 2    # both cores on each row: 2 seeds, 2 threads

Each row's 300 s are split: reach, reductions and model, then ``--start-s`` seconds of
carecheck's swap search (``heuristic.swap_search``: the plan it hands the MILP as a start), then
the MILP for what is left. The search is not told the published value.

Per row it prints ``covered`` (the plan's demand coverage recomputed by brute-force distances),
the published value and the difference, the status, ``claimed`` (carecheck's objective), the
solver's bound and gap, the times (reach, reduce + build, solve wall and CPU) and the model size
after carecheck's reductions (demand rows, candidates, nonzeros); ``found_s`` is when the search
first had its plan and ``at_s`` when the row's final plan was first in hand (the search's time
when the MILP only kept the start, else the row's whole time); a summary table follows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MAXIMO,
    RunRecord,
    covered_demand_brute,
    great_circle_reach,
    read_maximo,
    read_maximo_optima,
    solve_reach,
)

from carecheck.model import build_milp, problem_from_reach, reduce_problem
from carecheck.solve import SolverOptions, solve_milp

AUTO_HIGHS_NNZ = 500_000  # --solver auto: HiGHS above this many reach nonzeros


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--solver",
        choices=("auto", "cbc", "highs"),
        default="auto",
        help="auto: CBC, but HiGHS where the reach has more than "
        f"{AUTO_HIGHS_NNZ:,} nonzeros (Kings), as CBC's root LP there runs past any time limit "
        "[default: auto]",
    )
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per row")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="CITY or CITY/p (repeatable), e.g. --only NewYork --only Kings/60",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="cores for one row: solver threads, and the search on that many cores (one long "
        "search, segments on the others) [default: one core's search, solver's default threads]",
    )
    parser.add_argument(
        "--start-s",
        type=float,
        default=200.0,
        help="seconds of swap search for the starting plan, out of the row's time limit; "
        "the MILP gets the rest (0 = no search) [default: 200]",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra solver option: presolve=off (HiGHS), cuts=off (CBC, added to the defaults)",
    )
    parser.add_argument(
        "--lp-bound",
        action="store_true",
        help="also print the LP relaxation bound (HiGHS)",
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="keep solver logs here")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here as JSON")
    return parser.parse_args(argv)


def typed(value: str) -> bool | int | float | str:
    """'off' stays a string, '2' becomes 2, '0.5' becomes 0.5 (HiGHS options are typed)."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return {"true": True, "false": False}.get(value.lower(), value)


def selected(city: str, p: int, filters: list[str]) -> bool:
    """True when the row matches one of the ``--only`` filters (or there are none)."""
    if not filters:
        return True
    return any(f == city or f == f"{city}/{p}" for f in filters)


def lp_bound(reach, weight: np.ndarray, p: int) -> float:
    """Optimal value of the LP relaxation of the reduced model (HiGHS, x continuous)."""
    milp = build_milp(reduce_problem(problem_from_reach(reach, weight, p)))
    relaxed = replace(milp, integer=np.zeros_like(milp.integer))
    outcome = solve_milp(relaxed, SolverOptions(name="highs"))
    return float(outcome.objective)


def solver_for(reach, choice: str) -> str:
    """The solver of a row: ``choice``, or for ``auto`` CBC unless the reach is too big for it.

    CBC does not interrupt its root LP: on Kings (779,676 reach nonzeros, 726,025 after the
    reductions) a 100 s limit became 117–186 s of solving. HiGHS keeps to its limit.
    """
    if choice != "auto":
        return choice
    return "highs" if reach.nnz > AUTO_HIGHS_NNZ else "cbc"


def run_row(row, instance, reach, args: argparse.Namespace, reach_s: float) -> dict:
    """Solve one (city, p) row and check the plan by brute-force distances."""
    solver = solver_for(reach, args.solver)
    log_path = None
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = args.log_dir / f"{row.city}_{row.p}_{solver}.log"
    extra = [item.split("=", 1) for item in args.setting]
    options = SolverOptions(
        name=solver,
        # the row's whole budget: reach, reductions and the starting plan come out of it
        time_limit_s=max(1.0, args.time_limit - reach_s - args.start_s - 1.0),
        mip_gap=0.0,
        threads=args.threads,
        log_path=log_path,
        cbc_options=(*SolverOptions().cbc_options, *(f"{k} {v}" for k, v in extra)),
        highs_options=tuple((k, typed(v)) for k, v in extra),
    )
    record: RunRecord = solve_reach(
        reach,
        instance.demand,
        int(row.p),
        options,
        start_s=args.start_s,
        workers=args.threads or 1,
    )
    covered = (
        covered_demand_brute(instance.latlon, instance.demand, record.opened, row.radius_m)
        if len(record.opened) == row.p
        else None
    )
    published = int(row.optimal_covered_demand)
    objective = None if record.objective is None else round(record.objective)
    return {
        "instance": row.city,
        "p": int(row.p),
        "solver": solver,
        "r": int(row.radius_m),
        "covered": covered,
        "published": published,
        "diff": None if covered is None else covered - published,
        "status": record.status,
        "objective": objective,
        "bound": record.bound,
        "gap": record.gap,
        "reach_s": reach_s,
        "model_s": record.seconds["model"],
        "start_s": record.seconds["start"],
        "solve_s": record.seconds["solve"],
        "cpu_s": record.seconds["solve_cpu"],
        "start_value": record.start_value,
        "found_s": record.start_found_s,
        "at_s": reached_at(record, reach_s, covered, published),
        "lp_bound": lp_bound(reach, instance.demand, int(row.p)) if args.lp_bound else None,
        "opened": record.opened.tolist(),
        **record.size,
    }


def reached_at(
    record: RunRecord, reach_s: float, covered: int | None, published: int
) -> float | None:
    """Seconds into the row when its final plan was first in hand (None if below published).

    When the MILP only kept the starting plan, that is when the search first found it;
    otherwise the whole row's time (the solver's log would say more precisely).
    """
    if covered is None or covered < published:
        return None
    before = reach_s + record.seconds["model"]
    kept_start = (
        record.start_value is not None
        and record.objective is not None
        and record.start_found_s is not None
        and round(record.objective) <= round(record.start_value)
    )
    if kept_start:
        return before + record.start_found_s
    return before + record.seconds["start"] + record.seconds["solve"]


def fmt(value: object, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = (
    ("instance", "<12", ""),
    ("p", ">3", ""),
    ("r", ">4", ""),
    ("covered", ">9", ","),
    ("published", ">9", ","),
    ("diff", ">8", "+,"),
    ("solver", "<6", ""),
    ("status", "<10", ""),
    ("objective", ">9", ","),
    ("bound", ">11", ",.1f"),
    ("gap", ">8", ".2e"),
    ("reach_s", ">6", ".2f"),
    ("model_s", ">6", ".2f"),
    ("start_s", ">7", ".1f"),
    ("found_s", ">7", ".1f"),
    ("solve_s", ">7", ".1f"),
    ("cpu_s", ">7", ".1f"),
    ("at_s", ">6", ".1f"),
    ("rows", ">5", ""),
    ("candidates", ">5", ""),
    ("nonzeros", ">7", ""),
)


def header() -> str:
    labels = {"candidates": "cand", "nonzeros": "nnz", "objective": "claimed"}
    return " ".join(format(labels.get(k, k), align) for k, align, _ in COLUMNS)


def line(result: dict) -> str:
    text = " ".join(format(fmt(result[k], spec), align) for k, align, spec in COLUMNS)
    if result.get("start_value") is not None:
        text += f"  start={result['start_value']:,.0f}"
    if result.get("lp_bound") is not None:
        text += f"  lp_bound={result['lp_bound']:,.1f}"
    return text


def summary(results: list[dict], args: argparse.Namespace) -> str:
    reached = [r for r in results if r["diff"] is not None and r["diff"] >= 0]
    proved = [r for r in results if r["status"] == "optimal"]
    in_time = [r for r in reached if r["at_s"] is not None and r["at_s"] <= 300]
    total = sum(r["reach_s"] + r["model_s"] + r["start_s"] + r["solve_s"] for r in results)
    better = [r for r in results if r["diff"] is not None and r["diff"] > 0]
    honest = sum(r["objective"] == r["covered"] for r in results)
    lines = [
        "",
        f"summary ({args.solver}, time limit {args.time_limit:g} s"
        + f", starting plan {args.start_s:g} s"
        + (f", settings {' '.join(args.setting)}" if args.setting else "")
        + ")",
        header(),
        *(line(r) for r in results),
        "",
        f"rows: {len(results)}; reached the published value: {len(reached)}; "
        f"proved optimal: {len(proved)}; reached within 300 s: {len(in_time)}; "
        f"claimed objective = recomputed coverage: {honest}; "
        f"total time {total:,.0f} s",
    ]
    if better:
        lines.append(
            "ABOVE the published value (re-check the distance rule): "
            + ", ".join(f"{r['instance']}/{r['p']}" for r in better)
        )
    return "\n".join(lines)


def machine() -> str:
    """Date, CPUs and load average: solve times on a shared machine need this context."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average {load}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not MAXIMO.exists():
        print(f"benchmark data not found: {MAXIMO}", file=sys.stderr)
        return 2
    optima = read_maximo_optima()
    rows = [r for r in optima.itertuples() if selected(r.city, int(r.p), args.only)]
    print(
        f"carecheck on Máximo MCLP: {len(rows)} row(s), solver {args.solver}, "
        f"time limit {args.time_limit:g} s; {machine()}",
        flush=True,
    )
    print(header(), flush=True)
    results = []
    cache: dict[tuple[str, int], tuple] = {}
    for row in rows:
        key = (row.city, int(row.radius_m))
        if key not in cache:
            instance = read_maximo(MAXIMO / row.instance_file)
            start = time.perf_counter()
            reach = great_circle_reach(instance.latlon, float(row.radius_m))
            cache[key] = (instance, reach, time.perf_counter() - start)
        instance, reach, reach_s = cache[key]
        result = run_row(row, instance, reach, args, reach_s)
        results.append(result)
        print(line(result), flush=True)
    print(summary(results, args), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"finished: {machine()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
