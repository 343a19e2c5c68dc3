"""Province-scale demand: reach and exact reductions in partitions, with time and peak memory.

A seeded, generated province of 300 km × 300 km: 2,000,000 demand points clustered around
towns (Pareto town sizes, Gaussian spread) over a rural background, with lognormal weights
(elderly residents per point), nine districts on a 3 × 3 grid, 10,000 candidate sites near
demand with mixed reach (1, 1.5, 2 and 3 km) and 300 existing facilities (1.5 km) whose
coverage is a constant. Steps, each timed:

1. generate the points;
2. covered before: :func:`carecheck.partition.covered_in_partitions` over the existing sites;
3. reach and merging: :func:`carecheck.partition.reach_in_partitions` (``--chunk`` points at
   a time, rows kept apart by district);
4. demand classes and the reduced problem: :func:`~carecheck.partition.classes_from_merged`
   and :func:`~carecheck.partition.reduced_from_classes`;
5. optionally (``--solve``) the MILP with :func:`carecheck.model.build_milp` and p = 100
   sites with CBC (or HiGHS).

Peak memory is ``ru_maxrss`` of this process after step 4 (numpy and C allocations included);
``--tracemalloc`` adds the peak of each step as Python's allocator sees it (numpy arrays
included), at a large cost in time. CBC runs as a child process: its peak resident memory
(``VmHWM``) is polled from ``/proc``. Times are wall and CPU seconds: on a busy machine the CPU
figure is the one to compare.

Usage (from the repository root)::

    python benchmarks/big_demand.py                       # 2,000,000 × 10,000, no solve
    python benchmarks/big_demand.py --solve --time-limit 300
    python benchmarks/big_demand.py --demand 200000 --sites 2000 --chunk 50000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from carecheck.model import Bounds, Problem, TypeProblem, build_milp
from carecheck.partition import (
    classes_from_merged,
    covered_in_partitions,
    reach_in_partitions,
    reduced_from_classes,
)
from carecheck.solve import SolverOptions, solve_milp

WIDTH_M = 300_000.0
N_TOWNS = 400
REACH_TIERS_M = np.array([1_000.0, 1_500.0, 2_000.0, 3_000.0])
REACH_SHARES = np.array([0.4, 0.3, 0.2, 0.1])
EXISTING_REACH_M = 1_500.0
TARGET_MB = 2_048.0

T = TypeVar("T")


def clustered_points(
    rng: np.random.Generator, n: int, towns: np.ndarray, spread: np.ndarray, rural_share: float
) -> np.ndarray:
    """``n`` points: most around towns (Gaussian), the rest uniform over the province."""
    n_rural = int(n * rural_share)
    share = towns[:, 2] / towns[:, 2].sum()
    town = rng.choice(len(towns), size=n - n_rural, p=share)
    near = towns[town, :2] + rng.normal(size=(n - n_rural, 2)) * spread[town, None]
    rural = rng.uniform(0, WIDTH_M, size=(n_rural, 2))
    return np.clip(np.vstack([near, rural]), 0, WIDTH_M)


def generate(n_demand: int, n_sites: int, n_existing: int, seed: int) -> dict[str, np.ndarray]:
    """The seeded province: demand, weights, districts, candidate and existing sites."""
    rng = np.random.default_rng(seed)
    towns = np.column_stack(
        [rng.uniform(0.05, 0.95, size=(N_TOWNS, 2)) * WIDTH_M, rng.pareto(1.2, N_TOWNS) + 1.0]
    )
    size = towns[:, 2] / towns[:, 2].max()
    spread = 500.0 + 4_000.0 * np.sqrt(size)
    demand_xy = clustered_points(rng, n_demand, towns, spread, rural_share=0.15)
    return {
        "demand_xy": demand_xy,
        "weight": np.round(rng.lognormal(mean=2.0, sigma=1.0, size=n_demand), 1),
        "district": districts(demand_xy),
        "site_xy": clustered_points(rng, n_sites, towns, spread, rural_share=0.10),
        "site_reach": rng.choice(REACH_TIERS_M, size=n_sites, p=REACH_SHARES),
        "site_cost": np.round(rng.uniform(200, 1_000, n_sites)),
        "existing_xy": clustered_points(rng, n_existing, towns, spread * 0.5, rural_share=0.0),
    }


def districts(xy: np.ndarray, per_side: int = 3) -> np.ndarray:
    """District code 0 … 8 on a 3 × 3 grid."""
    cell = np.minimum((xy / WIDTH_M * per_side).astype(int), per_side - 1)
    return (cell[:, 1] * per_side + cell[:, 0]).astype(np.int64)


class ChildPeak(threading.Thread):
    """Polls the peak resident memory (VmHWM) of this process's children, e.g. CBC."""

    def __init__(self, interval_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        me = str(os.getpid())
        while not self._halt.is_set():
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    if stat.read_text().rsplit(")", 1)[1].split()[1] != me:
                        continue
                    for line in (stat.parent / "status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except (OSError, IndexError, ValueError):
                    continue  # the process ended while we looked
            self._halt.wait(self.interval_s)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak_kb


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(label: str, work: Callable[[], T]) -> T:
    """Run one step; print its wall and CPU time and the peak RSS so far (and traced peak)."""
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
    start, cpu = time.perf_counter(), time.process_time()
    value = work()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    traced = (
        f"   step peak (tracemalloc) {tracemalloc.get_traced_memory()[1] / 2**20:5.0f} MB"
        if tracing
        else ""
    )
    print(
        f"  {label:<32} {seconds:7.2f} s wall {cpu:7.2f} s CPU   peak RSS {rss_mb():5.0f} MB"
        + traced,
        flush=True,
    )
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demand", type=int, default=2_000_000)
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--existing", type=int, default=300)
    parser.add_argument("--chunk", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--count", type=int, default=100, help="sites to open (with --solve)")
    parser.add_argument("--solve", action="store_true", help="also build the MILP and solve")
    parser.add_argument("--solver", choices=("cbc", "highs"), default="cbc")
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--tracemalloc", action="store_true", help="trace each step's peak")
    args = parser.parse_args(argv)

    print(
        f"big demand: {args.demand:,} demand points × {args.sites:,} candidate sites "
        f"(reach {', '.join(f'{r / 1000:g}' for r in REACH_TIERS_M)} km), {args.existing} "
        f"existing, {WIDTH_M / 1000:g} km × {WIDTH_M / 1000:g} km, chunk {args.chunk:,}, "
        f"seed {args.seed}"
    )
    print(f"  {'start (imports)':<32} {'':31}   peak RSS {rss_mb():5.0f} MB")
    if args.tracemalloc:
        tracemalloc.start()
    total = time.perf_counter()
    data = step(
        "generate",
        lambda: generate(args.demand, args.sites, args.existing, args.seed),
    )
    covered = step(
        "covered before (existing sites)",
        lambda: covered_in_partitions(
            data["demand_xy"], data["existing_xy"], EXISTING_REACH_M, chunk=args.chunk
        ),
    )
    merged = step(
        "reach + merge in partitions",
        lambda: reach_in_partitions(
            data["demand_xy"],
            data["weight"],
            data["site_xy"],
            data["site_reach"],
            covered_before=covered,
            chunk=args.chunk,
            region=data["district"],
        ),
    )
    classes = step(
        "demand classes",
        lambda: classes_from_merged([merged], data["weight"], region=data["district"]),
    )
    n_sites = args.sites
    problem = Problem(
        weight=classes.weight,
        types=(
            TypeProblem(
                name="site",
                reach=classes.reach[0],
                covered_before=classes.covered_before[0],
                cost=data["site_cost"],
                tier=np.full(n_sites, -1),
                region=districts(data["site_xy"]),
                count=Bounds(args.count, args.count),
                region_min_coverage={d: 0.3 for d in range(9)},
            ),
        ),
        region=classes.region,
        region_names=tuple(f"D{d + 1}" for d in range(9)),
    )
    reduced = step("reduced problem", lambda: reduced_from_classes(problem, classes))
    reach_s = time.perf_counter() - total
    peak = rss_mb()
    weight = data["weight"]
    (reduced_type,) = reduced.types
    print(
        f"  demand: {args.demand:,} points, weight {weight.sum():,.0f}; covered before "
        f"{int(covered.sum()):,} points ({merged.covered_before_weight:,.0f}); zero weight "
        f"{int((weight == 0).sum()):,}; out of reach "
        f"{int(((merged.demand_rows < 0) & ~covered & (weight > 0)).sum()):,}"
    )
    print(
        f"  unique reach sets (rows, by district): {merged.n_rows:,}, nnz {merged.nnz:,} "
        f"({merged.nnz / max(merged.n_rows, 1):.1f} sites per row); demand classes "
        f"{classes.n_classes:,}; candidates kept {len(reduced_type.candidates):,} of {n_sites:,}"
    )
    ok = "met" if peak < TARGET_MB else "MISSED"
    print(
        f"  generate + reach + reductions: {reach_s:.1f} s; peak RSS {peak:,.0f} MB "
        f"(target < {TARGET_MB:,.0f} MB: {ok})"
    )
    if args.solve:
        tracemalloc.stop()  # the solver runs as a child: only the model build is left
        milp = step("build MILP", lambda: build_milp(reduced))
        print(f"  MILP: {milp.n_cols:,} columns, {milp.n_rows:,} rows, {milp.matrix.nnz:,} nnz")
        watcher = ChildPeak()
        watcher.start()
        options = SolverOptions(name=args.solver, time_limit_s=args.time_limit, mip_gap=0.0)
        start = time.perf_counter()
        outcome = solve_milp(milp, options)
        seconds = time.perf_counter() - start
        solver_mb = watcher.stop() / 1024
        objective = outcome.objective or 0.0
        gap = "" if outcome.gap is None else f", gap {outcome.gap:.2%}"
        print(
            f"  solve p = {args.count} ({args.solver}): {outcome.status} in {seconds:.1f} s, "
            f"objective {objective:,.0f} ({objective / weight.sum():.1%} of the weight "
            f"covered{gap}); peak RSS python {rss_mb():,.0f} MB, solver {solver_mb:,.0f} MB"
        )
    return 0 if peak < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
