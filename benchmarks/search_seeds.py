"""How often the timed swap search reaches the published Máximo value, over several seeds.

One run of a timed search says little: on the hard rows the same settings reach the published
value with one seed and end hundreds short with the next (San Francisco p = 80, 2 cores: at
the published value after 122.5 s in one 150-s run, 156 short after 200 s in another). To
compare two ways of searching, run each several times with different seeds and compare the
share of runs that got there and the median shortfall. This script does that for the search
alone (no MILP after it): reach and reductions as in ``mclp_maximo.py``, then
``heuristic.swap_search`` for ``--seconds`` on ``--workers`` cores, once per seed (seeds
0, 1000, 2000, …, so that the seeds of one run's segments never repeat another's), and prints
every run and a summary per row. Every plan's coverage is recounted from the reach matrix.

``--set NAME=VALUE`` changes one of the schedule settings (``heuristic.Tuning``) for the runs:
``segments``, ``segment_min_s``, ``segment_growth``, ``merge_share`` or ``lns_share`` (also
spelt as the module constants they once were, ``_SEGMENTS`` … ``_LNS_SHARE``); they are passed
to ``swap_search`` as its ``tuning``.

Usage (from the repository root)::

    python benchmarks/search_seeds.py --runs 5 --seconds 100 --workers 2
    python benchmarks/search_seeds.py --only Bronx/90 --runs 3 --set _SEGMENT_GROWTH=1.25
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MAXIMO, read_maximo_optima, reduced_maximo_row

from carecheck import heuristic

DEFAULT_ROWS = ("NewYork/100", "Bronx/90", "SanFrancisco/80", "Kings/60")
SETTINGS = ("segments", "segment_min_s", "segment_growth", "merge_share", "lns_share")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", default=[], help=f"CITY/p (repeatable; default {DEFAULT_ROWS})"
    )
    parser.add_argument("--runs", type=int, default=5, help="seeds per row [default: 5]")
    parser.add_argument("--seconds", type=float, default=100.0, help="search time per run")
    parser.add_argument("--workers", type=int, default=2, help="cores per run [default: 2]")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a schedule setting for these runs, one of {', '.join(SETTINGS)}",
    )
    return parser.parse_args(argv)


def apply_settings(pairs: list[str]) -> tuple[heuristic.Tuning, list[str]]:
    """The search's tuning with the named settings changed, and them as NAME=VALUE for the
    header."""
    tuning, applied = heuristic.Tuning(), []
    for pair in pairs:
        given, _, value = pair.partition("=")
        name = given.lstrip("_").lower()  # _SEGMENTS, as the setting was once spelt: segments
        if name not in SETTINGS or not value:
            raise SystemExit(f"--set {pair!r}: use NAME=VALUE with NAME one of {SETTINGS}")
        kind = type(getattr(tuning, name))
        tuning = replace(tuning, **{name: kind(value)})
        applied.append(f"{name}={kind(value)}")
    return tuning, applied


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not MAXIMO.exists():
        print(f"benchmark data not found: {MAXIMO}", file=sys.stderr)
        return 2
    tuning, applied = apply_settings(args.set)
    print(
        f"search alone, {args.seconds:g} s on {args.workers} core(s), {args.runs} seed(s) per "
        f"row; settings: {', '.join(applied) or 'defaults'}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    print(
        f"{'row':<16} {'seed':>5} {'diff':>7} {'found_s':>8} {'segments':>8} {'merges':>6} "
        f"{'windows':>7}"
    )
    optima = read_maximo_optima()
    summary = []
    for name in args.only or list(DEFAULT_ROWS):
        row, reduced = reduced_maximo_row(optima, name)
        p = int(row.p)
        matrix, weight = reduced.reach.tocsr(), reduced.row_weight
        diffs, times = [], []
        for run in range(args.runs):
            seed = 1000 * run
            found = heuristic.swap_search(
                matrix,
                weight,
                p,
                seconds=args.seconds,
                seed=seed,
                workers=args.workers,
                tuning=tuning,
            )
            hits = np.asarray(matrix[:, found.opened].sum(axis=1)).ravel()
            recount = float(weight[hits > 0].sum())
            if abs(recount - found.covered) > 1e-6 * max(1.0, recount):
                print(f"{name}: seed {seed} claims {found.covered} but covers {recount}")
                return 1
            diff = recount - float(row.optimal_covered_demand)
            diffs.append(diff)
            if diff >= 0:
                times.append(found.found_s)
            print(
                f"{name:<16} {seed:>5} {diff:>+7,.0f} {found.found_s:>8.1f} "
                f"{found.segments:>8} {found.merges:>6} {found.window_steps:>7}",
                flush=True,
            )
        reached = sum(d >= 0 for d in diffs)
        when = f", median {statistics.median(times):.1f} s when reached" if times else ""
        summary.append(
            f"{name:<16} reached {reached}/{len(diffs)}, median diff "
            f"{statistics.median(diffs):+,.0f}, worst {min(diffs):+,.0f}{when}"
        )
    print("summary", *summary, sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
