"""Would HiGHS's LP relaxation, solved first, spare the CBC run? (issue 22, lever 4)

An LP optimum that is integral is also the MILP's optimum, so a root LP solved by HiGHS could
end a solve without CBC when it comes out integral, and would otherwise only have cost its
time. For each instance of ``scale.py`` (same generator, same seed) the pipeline runs up to the
solve; the captured MILP is then solved by CBC as a run solves it (``solve._solve_cbc``) and its
LP relaxation by HiGHS with each LP method (``solve.lp_relaxation``, one thread). Prints the
seconds of each, both objectives and how many integer columns the LP left fractional.

Usage (from the repository root)::

    python benchmarks/highs_root_lp.py                 # 5k, 20k and 100k
    python benchmarks/highs_root_lp.py --size 20k
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from cbc_handoff import captured_model
from scale import SIZES, generate

from carecheck import solve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", choices=list(SIZES))
    parser.add_argument("--seed", type=int, default=20240601)  # scale.py's
    args = parser.parse_args(argv)
    for label in args.size or ["5k", "20k", "100k"]:
        with tempfile.TemporaryDirectory(prefix="carecheck-rootlp-") as tmp:
            milp, options, start = captured_model(generate(SIZES[label], args.seed, Path(tmp)))
            began = time.perf_counter()
            _, values, _, _ = solve._solve_cbc(milp, options, start)
            cbc = time.perf_counter() - began
            print(
                f"{label}: {milp.n_rows:,} rows, {milp.n_cols:,} columns; CBC (whole MILP) "
                f"{cbc:.2f} s, model objective {float(milp.objective @ values):,.1f}"
            )
            for method in ("simplex", "ipm", "pdlp"):
                began = time.perf_counter()
                got = solve.lp_relaxation(milp, time_limit_s=None, threads=1, method=method)
                spent = time.perf_counter() - began
                if got is None:
                    print(f"    HiGHS LP {method:<7} {spent:6.2f} s, no optimal LP")
                    continue
                whole = got[0][milp.integer]
                fractional = int(np.sum(np.abs(whole - np.round(whole)) > 1e-6))
                print(
                    f"    HiGHS LP {method:<7} {spent:6.2f} s, LP objective "
                    f"{float(milp.objective @ got[0]):,.1f}, {fractional} integer columns "
                    "fractional"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
