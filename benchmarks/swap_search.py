"""Rounds per second of carecheck's swap search, numpy against the compiled loops (numba).

On reduced Máximo instances (``../shared/benchdata/mclp-maximo``, reach and reductions as in
``mclp_maximo.py``), each backend of ``heuristic.swap_search`` makes the same fixed number of
perturbation rounds from the same seed. The demand weights are integers, so every sum is exact
and both backends make the same moves: the script checks that they end on the same plan, and
prints each backend's time, rounds per second and the speed-up. numba's compile (or load from
its disk cache) is timed apart, on a tiny instance, before the rows.

Usage (from the repository root)::

    python benchmarks/swap_search.py                      # three rows, 200 rounds each
    python benchmarks/swap_search.py --rounds 500 --only Kings/80
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MAXIMO, read_maximo_optima, reduced_maximo_row

from carecheck.heuristic import swap_search

DEFAULT_ROWS = ("NewYork/100", "SanFrancisco/60", "Kings/80")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="perturbation rounds per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", action="append", default=[], help=f"CITY/p (repeatable; default {DEFAULT_ROWS})"
    )
    args = parser.parse_args(argv)
    if not MAXIMO.exists():
        print(f"benchmark data not found: {MAXIMO}", file=sys.stderr)
        return 2
    wanted = args.only or list(DEFAULT_ROWS)
    began = time.perf_counter()
    tiny = sp.csr_matrix(np.eye(6, dtype=bool) | np.eye(6, k=1, dtype=bool))
    swap_search(tiny, np.ones(6), 2, rounds=1, backend="numba")
    print(f"numba compile or cache load: {time.perf_counter() - began:.2f} s", flush=True)
    print(
        f"{'row':<16} {'rows':>5} {'cand':>5} {'nnz':>7} {'backend':<7} {'rounds':>6} "
        f"{'seconds':>8} {'rounds/s':>8} {'covered':>10}"
    )
    optima = read_maximo_optima()
    for name in wanted:
        row, reduced = reduced_maximo_row(optima, name)
        p = int(row.p)
        times, plans = {}, {}
        for backend in ("numpy", "numba"):
            found = swap_search(
                reduced.reach,
                reduced.row_weight,
                p,
                seconds=3600.0,
                rounds=args.rounds,
                seed=args.seed,
                backend=backend,
            )
            times[backend], plans[backend] = found.seconds, found.opened.tolist()
            print(
                f"{name:<16} {reduced.reach.shape[0]:>5} {reduced.reach.shape[1]:>5} "
                f"{reduced.reach.nnz:>7} {backend:<7} {found.rounds:>6} {found.seconds:>8.2f} "
                f"{found.rounds / found.seconds:>8.0f} {found.covered:>10,.0f}",
                flush=True,
            )
        same = "same plan" if plans["numpy"] == plans["numba"] else "PLANS DIFFER"
        print(f"{name:<16} speed-up {times['numpy'] / times['numba']:.1f}x, {same}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
