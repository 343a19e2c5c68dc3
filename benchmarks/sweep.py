"""Sweep speed-up: 40 Ningbo variants (count × reach × demand growth), serial against the local
pool on all cores (issue target on 2 cores: ≥ 1.8×), and optionally on a Dask LocalCluster.

    python benchmarks/sweep.py [--dask]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from carecheck.sweep import load_sweep, plan_jobs, run_sweep

BASE = Path(__file__).resolve().parents[1] / "scenarios" / "ningbo-2026.yaml"
GRID = {
    "facilities.institution.count": [10, 15, 20, 25, 30],
    "facilities.embedded.radius_m": [800, 1000],
    "demand.growth": [1.0, 1.1, 1.2, 1.3],
}


def sweep_file(folder: Path, name: str) -> Path:
    path = folder / f"{name}.yaml"
    body = {"name": name, "base": str(BASE), "out": str(folder / name), "grid": GRID}
    path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dask", action="store_true", help="also time a 2-worker LocalCluster")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="carecheck-sweep-bench-"))
    try:
        # imports paid before either timing, so neither side carries them
        import matplotlib.pyplot  # noqa: F401
        import pulp  # noqa: F401
        import pyogrio  # noqa: F401

        import carecheck.pipeline  # noqa: F401

        # both timings are the whole sweep (plan, runs, table, report, plot); serial runs the
        # variants one after another in this process
        spec, where = load_sweep(sweep_file(folder, "serial"))
        jobs, _ = plan_jobs(spec, where)
        start = time.perf_counter()
        serial, _ = run_sweep(spec, where, workers=1)
        t_serial = time.perf_counter() - start
        spec, where = load_sweep(sweep_file(folder, "pool"))
        start = time.perf_counter()
        table, _ = run_sweep(spec, where, workers=os.cpu_count())
        t_pool = time.perf_counter() - start
        same = [round(v, 6) for v in serial["objective"]] == [
            round(v, 6) for v in table["objective"]
        ]
        print(f"{len(jobs)} variants of {BASE.name}; {os.cpu_count()} cores")
        print(f"serial, in one process:      {t_serial:7.1f} s")
        print(
            f"local pool ({os.cpu_count()} processes): {t_pool:7.1f} s   "
            f"speed-up {t_serial / t_pool:.2f}×   same results: {same}"
        )
        if args.dask:
            from dask.distributed import Client, LocalCluster

            spec, where = load_sweep(sweep_file(folder, "dask"))
            with (
                LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as c,
                Client(c) as client,
            ):
                start = time.perf_counter()
                run_sweep(spec, where, client=client)
                t_dask = time.perf_counter() - start
            print(
                f"Dask LocalCluster (2 workers): {t_dask:5.1f} s   "
                f"speed-up {t_serial / t_dask:.2f}×"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
