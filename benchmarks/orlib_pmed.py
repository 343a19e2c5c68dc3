"""Solve the 40 OR-Library p-median instances (pmed1 … pmed40) and compare with the optima.

Data: ``../shared/benchdata/orlib-pmed`` (see its README). Each file is a graph, not a
matrix: ``n m p`` then ``m`` undirected edges ``i j cost`` (1-based). For a vertex pair listed
more than once the **last listed cost wins** (OR-Library's pmedinfo rule), then all-pairs
shortest paths (Dijkstra, scipy.sparse.csgraph) give the n × n distances. Every vertex is a
demand point of weight 1 and a candidate site; the objective is the unweighted sum of
distances to the nearest of the p open vertices.

Usage (from the repository root)::

    python benchmarks/orlib_pmed.py                         # all 40, CBC, at most 600 s each
    python benchmarks/orlib_pmed.py --solver highs --only pmed1 --only pmed40
    python benchmarks/orlib_pmed.py --no-reduce             # the plain radius formulation

Per instance it prints n, p, the objective found (recomputed from the open sites), the
published optimum, whether they match, the status, the heuristic's value, the LP bound, the
wall-clock times (read + shortest paths, heuristic, LP bound, model build, MILP solve, total),
the CPU time (this process and the CBC runs it started; it tells a loaded machine from a slow
run) and the sizes: ``levels`` of the full radius formulation, ``lp_z`` z-variables in the
truncated LP, ``milps`` the number of truncated MILPs solved, then sites, z-variables, rows
and nonzeros of the last MILP ("-" when the LP bound already proved the best plan optimal);
a summary follows.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from carecheck.pmedian import PMedianResult, solve_pmedian
from carecheck.solve import SolverOptions

ORLIB = Path(__file__).resolve().parents[1].parent / "shared" / "benchdata" / "orlib-pmed"


def orlib_pmed_graph(path: Path) -> tuple[sp.csr_matrix, int]:
    """The instance's graph (upper-triangular CSR, last listed cost per pair) and p."""
    numbers = np.array(Path(path).read_text(encoding="utf-8").split(), dtype=np.int64)
    n, m, p = (int(v) for v in numbers[:3])
    edges = numbers[3 : 3 + 3 * m]
    if len(edges) != 3 * m:
        raise ValueError(f"{path}: header says {m} edges, found {len(edges) // 3}")
    edges = edges.reshape(m, 3)
    u, v, cost = edges[:, 0] - 1, edges[:, 1] - 1, edges[:, 2].astype(float)
    low, high = np.minimum(u, v), np.maximum(u, v)
    # np.unique on the reversed list finds each pair's last listing
    _, first_in_reversed = np.unique((low * n + high)[::-1], return_index=True)
    last = m - 1 - first_in_reversed
    graph = sp.csr_matrix((cost[last], (low[last], high[last])), shape=(n, n))
    return graph, p


def orlib_pmed_distances(path: Path) -> tuple[np.ndarray, int]:
    """The n × n shortest-path distance matrix of an OR-Library pmed file, and p."""
    graph, p = orlib_pmed_graph(path)
    return shortest_path(graph, method="D", directed=False), p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", choices=("cbc", "highs"), default="cbc")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=600.0,
        help="seconds per instance (the target is on the total)",
    )
    parser.add_argument(
        "--only", action="append", default=[], help="instance name (repeatable), e.g. pmed7"
    )
    parser.add_argument("--threads", type=int, default=None, help="solver threads")
    parser.add_argument("--no-reduce", action="store_true", help="skip the exact reductions")
    parser.add_argument("--no-heuristic", action="store_true", help="skip the heuristic")
    parser.add_argument("--log-dir", type=Path, default=None, help="keep solver logs here")
    return parser.parse_args(argv)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the CBC runs)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_instance(row, args: argparse.Namespace) -> dict:
    """Read, solve and check one instance."""
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    distance, p = orlib_pmed_distances(ORLIB / f"{row.instance}.txt")
    read_s = time.perf_counter() - start
    n = len(distance)
    if (n, p) != (row.n, row.p):
        raise ValueError(f"{row.instance}: file has n={n}, p={p}; optima.csv says {row.n}, {row.p}")
    log_path = None
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = args.log_dir / f"{row.instance}_{args.solver}.log"
    options = SolverOptions(
        name=args.solver,
        time_limit_s=args.time_limit,
        mip_gap=0.0,
        threads=args.threads,
        log_path=log_path,
    )
    result: PMedianResult = solve_pmedian(
        distance,
        np.ones(n),
        p,
        options=options,
        heuristic=not args.no_heuristic,
        reduce=not args.no_reduce,
    )
    objective = None if result.objective is None else round(result.objective)
    size = result.size
    full = result.lp_size or size
    return {
        "instance": row.instance,
        "n": n,
        "p": p,
        "objective": objective,
        "published": int(row.optimal_value),
        "match": objective == int(row.optimal_value) and len(result.sites) == p,
        "status": result.status,
        "heuristic": result.heuristic_objective,
        "lp_bound": result.lp_bound,
        "read_s": read_s,
        "heur_s": result.seconds.get("heuristic"),
        "lp_s": result.seconds.get("lp"),
        "build_s": result.seconds.get("build"),
        "solve_s": result.seconds.get("solve"),
        "total_s": read_s + result.seconds["total"],
        "cpu_s": cpu_seconds() - cpu_start,
        "levels": None if full is None else full.levels,
        "lp_z": None if result.lp_size is None else result.lp_size.z_variables,
        "milps": result.milp_rounds,
        "sites": None if size is None else size.sites,
        "z": None if size is None else size.z_variables,
        "rows": None if size is None else size.constraints,
        "nnz": None if size is None else size.nonzeros,
    }


def fmt(value: object, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = (
    ("instance", "<7", ""),
    ("n", ">4", ""),
    ("p", ">4", ""),
    ("objective", ">6", ""),
    ("published", ">6", ""),
    ("match", ">5", ""),
    ("status", "<10", ""),
    ("heuristic", ">6", ".0f"),
    ("lp_bound", ">8", ".1f"),
    ("read_s", ">6", ".2f"),
    ("heur_s", ">6", ".2f"),
    ("lp_s", ">6", ".2f"),
    ("build_s", ">7", ".2f"),
    ("solve_s", ">7", ".1f"),
    ("total_s", ">7", ".1f"),
    ("cpu_s", ">7", ".1f"),
    ("levels", ">6", ""),
    ("lp_z", ">6", ""),
    ("milps", ">5", ""),
    ("sites", ">5", ""),
    ("z", ">6", ""),
    ("rows", ">6", ""),
    ("nnz", ">7", ""),
)
LABELS = {"objective": "found", "published": "opt", "heuristic": "heur", "lp_bound": "lp"}


def header() -> str:
    return " ".join(format(LABELS.get(k, k), align) for k, align, _ in COLUMNS)


def line(result: dict) -> str:
    return " ".join(format(fmt(result[k], spec), align) for k, align, spec in COLUMNS)


def summary(results: list[dict], args: argparse.Namespace) -> str:
    total = sum(r["total_s"] for r in results)
    cpu = sum(r["cpu_s"] for r in results)
    slowest = max(results, key=lambda r: r["total_s"]) if results else None
    lines = [
        "",
        f"summary ({args.solver}, time limit {args.time_limit:g} s per instance"
        + (", no reductions" if args.no_reduce else "")
        + (", no heuristic" if args.no_heuristic else "")
        + ")",
        header(),
        *(line(r) for r in results),
        "",
        f"instances: {len(results)}; match the published optimum: "
        f"{sum(r['match'] for r in results)}; proved optimal: "
        f"{sum(r['status'] == 'optimal' for r in results)}; heuristic already optimal: "
        f"{sum(r['heuristic'] == r['published'] for r in results)}; "
        f"total time {total:,.1f} s ({total / 60:.1f} min), CPU {cpu:,.1f} s",
    ]
    if slowest is not None:
        lines.append(f"slowest: {slowest['instance']} ({slowest['total_s']:.1f} s)")
    misses = [r["instance"] for r in results if not r["match"] or r["status"] != "optimal"]
    if misses:
        lines.append("NOT matched and proved: " + ", ".join(misses))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not ORLIB.exists():
        print(f"benchmark data not found: {ORLIB}", file=sys.stderr)
        return 2
    optima = pd.read_csv(ORLIB / "optima.csv")
    rows = [r for r in optima.itertuples() if not args.only or r.instance in args.only]
    print(
        f"carecheck p-median on OR-Library pmed: {len(rows)} instance(s), solver "
        f"{args.solver}, time limit {args.time_limit:g} s",
        flush=True,
    )
    print(header(), flush=True)
    results = []
    for row in rows:
        result = run_instance(row, args)
        results.append(result)
        print(line(result), flush=True)
    print(summary(results, args), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
