"""Time the whole carecheck pipeline on generated instances: files in, outputs out.

Three seeded sizes (demand points × candidate sites): 5,000 × 1,000, 20,000 × 2,000 and
100,000 × 5,000. Demand is clustered around towns (Gaussian spread) over a rural background,
weights are lognormal (elderly residents per community), candidates sit near demand, and some
existing facilities are already open. Demand is written as a lon/lat CSV and the sites as a
GeoPackage, with a scenario YAML, and solved by ``carecheck.run_scenario``.

Each size runs in two fresh child processes: one generates the files, the other runs the
pipeline and reports its stage timings (``result.timings``), its CPU time and its peak resident
memory: ``ru_maxrss`` of the Python process (numpy / C allocations included) and, separately,
the peak (``VmHWM``) of the solver's child process, polled from ``/proc`` (CBC runs as a
child; HiGHS runs inside the Python process). Each figure belongs to one size only. The memory
target is checked against the sum of the two peaks.

Usage (from the repository root)::

    python benchmarks/scale.py                      # all three sizes, CBC
    python benchmarks/scale.py --solver highs --size 20k
    python benchmarks/scale.py --keep /tmp/scale     # keep the generated files and outputs
    python benchmarks/scale.py --process             # also `carecheck run` as a process
    python benchmarks/scale.py --size 5k --spopt /path/to/python   # and spopt's MCLP beside it

``--process`` times ``carecheck run`` as a planner starts it (interpreter, imports, every file),
with ``--no-map`` and with ``--data-only``; ``--spopt PYTHON`` also solves the instance with
spopt's MCLP (``MCLP.from_cost_matrix``, the existing facilities predefined, CBC through PuLP)
in a fresh process of a Python that has spopt, and prints the ratio and both objectives. spopt
builds a dense demand × site distance matrix: 100,000 × 5,000 needs 4 GB for it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

_STARTED = time.perf_counter()  # this process's start, for the imports of a child
WORKING_CRS = "EPSG:32651"  # UTM 51N (Ningbo); the generated region sits inside this zone
ORIGIN = (300_000.0, 3_250_000.0)  # south-west corner of the region, metres in WORKING_CRS


@dataclass(frozen=True)
class Size:
    """One generated instance: counts, region width, towns, reach and sites to open."""

    label: str
    n_demand: int
    n_sites: int
    width_m: float
    n_towns: int
    n_existing: int
    radius_m: float
    count: int


SIZES = {
    "5k": Size("5k", 5_000, 1_000, 20_000, 12, 20, 1_500, 20),
    "20k": Size("20k", 20_000, 2_000, 40_000, 30, 60, 1_500, 30),
    "100k": Size("100k", 100_000, 5_000, 80_000, 80, 200, 1_500, 50),
}
TARGETS_S = {"20k": 5.0, "100k": 15.0}  # in-process end to end (issue 3)
# issue 22: the whole process, as a planner starts it; and the ratio to spopt's MCLP
TARGETS_PROCESS_S = {"20k": 2.0, "100k": 10.0}
TARGET_RATIO = {"5k": 20.0}
TARGET_MEMORY_MB = {"100k": 2048.0}


# --------------------------------------------------------------------------- generation


def clustered_points(
    rng: np.random.Generator,
    n: int,
    towns: np.ndarray,
    spread: np.ndarray,
    width: float,
    rural_share: float,
) -> np.ndarray:
    """``n`` points: most around towns (Gaussian), the rest uniform over the square."""
    n_rural = int(n * rural_share)
    town = rng.choice(len(towns), size=n - n_rural, p=_town_share(towns))
    near = towns[town, :2] + rng.normal(size=(n - n_rural, 2)) * spread[town, None]
    rural = rng.uniform(0, width, size=(n_rural, 2))
    return np.clip(np.vstack([near, rural]), 0, width)


def _town_share(towns: np.ndarray) -> np.ndarray:
    return towns[:, 2] / towns[:, 2].sum()


def generate(size: Size, seed: int, folder: Path) -> Path:
    """Write demand.csv, sites.gpkg and scenario.yaml into ``folder``; return the YAML path."""
    import geopandas as gpd
    import pandas as pd
    import yaml
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    width = size.width_m
    towns = np.column_stack(
        [
            rng.uniform(0.1, 0.9, size=(size.n_towns, 2)) * width,
            rng.pareto(1.2, size.n_towns) + 1.0,
        ]  # town sizes: a few big, many small
    )
    spread = 600.0 + 2_500.0 * np.sqrt(_town_share(towns) / _town_share(towns).max())
    demand_xy = clustered_points(rng, size.n_demand, towns, spread, width, rural_share=0.15)
    weight = np.maximum(1, np.round(rng.lognormal(mean=3.5, sigma=0.9, size=size.n_demand)))
    site_xy = clustered_points(rng, size.n_sites, towns, spread, width, rural_share=0.10)
    existing_xy = clustered_points(rng, size.n_existing, towns, spread * 0.5, width, 0.0)
    district = _districts(demand_xy, width)

    to_lonlat = Transformer.from_crs(WORKING_CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(demand_xy[:, 0] + ORIGIN[0], demand_xy[:, 1] + ORIGIN[1])
    pd.DataFrame(
        {
            "demand_id": [f"D{k:06d}" for k in range(size.n_demand)],
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
            "elderly": weight.astype(int),
            "district": district,
        }
    ).to_csv(folder / "demand.csv", index=False)

    def sites(xy: np.ndarray, prefix: str) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(
            {
                "site_id": [f"{prefix}{k:05d}" for k in range(len(xy))],
                "cost": np.round(rng.uniform(200, 1_000, len(xy))),
                "district": _districts(xy, width),
            },
            geometry=gpd.points_from_xy(xy[:, 0] + ORIGIN[0], xy[:, 1] + ORIGIN[1]),
            crs=WORKING_CRS,
        ).to_crs(4326)

    gpkg = folder / "sites.gpkg"
    sites(site_xy, "C").to_file(gpkg, layer="candidates", engine="pyogrio")
    sites(existing_xy, "E").to_file(gpkg, layer="existing", engine="pyogrio")
    scenario = {
        "name": f"scale-{size.label}",
        "title": f"generated {size.n_demand:,} × {size.n_sites:,} (seed {seed})",
        "crs": WORKING_CRS,
        "demand": {
            "path": "demand.csv",
            "id": "demand_id",
            "lon": "lon",
            "lat": "lat",
            "weight": "elderly",
            "region": "district",
        },
        "facilities": {
            "institution": {
                "radius_m": size.radius_m,
                "count": size.count,
                "candidates": {
                    "path": "sites.gpkg",
                    "layer": "candidates",
                    "id": "site_id",
                    "cost": "cost",
                    "region": "district",
                },
                "existing": {"path": "sites.gpkg", "layer": "existing", "id": "site_id"},
            }
        },
        "solver": {"name": "cbc", "time_limit_s": 300, "mip_gap": 0},
    }
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _districts(xy: np.ndarray, width: float, per_side: int = 3) -> np.ndarray:
    """Nine districts on a 3 × 3 grid, named D1 … D9."""
    cell = np.minimum((xy / width * per_side).astype(int), per_side - 1)
    return np.array([f"D{1 + c}" for c in cell[:, 1] * per_side + cell[:, 0]], dtype=object)


# --------------------------------------------------------------------------- one run


class ChildPeak(threading.Thread):
    """Polls the peak resident memory (VmHWM) of this process's children, e.g. CBC.

    ``RUSAGE_CHILDREN.ru_maxrss`` is no use here: Linux carries the parent's RSS at spawn
    time into the child's maximum, so it reports at least the Python process's size.
    """

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
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    if fields[1] == me:
                        self.peak_kb = max(self.peak_kb, _vm_hwm_kb(stat.parent))
                except (OSError, IndexError, ValueError):
                    continue  # the process ended while we looked
            self._halt.wait(self.interval_s)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak_kb


def _vm_hwm_kb(proc: Path) -> int:
    for line in (proc / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_pipeline(scenario: Path, out: Path, solver: str) -> dict:
    """Run the real pipeline in this (fresh) process and report timings and peak memory."""
    start = time.perf_counter()
    import carecheck

    imported = time.perf_counter()
    watcher = ChildPeak()
    watcher.start()
    marks: list[tuple[str, float]] = []
    cpu_before = _cpu_s()
    result = carecheck.run_scenario(
        scenario, out=out, solver=solver, progress=lambda name: marks.append((name, _cpu_s()))
    )
    finished = time.perf_counter()
    cpu = _cpu_s() - cpu_before
    marks.append(("end", cpu_before + cpu))
    solver_kb = watcher.stop()
    return {
        "status": result.status,
        "objective": result.objective,
        "gap": result.gap,
        "verified": result.verification.ok,
        "timings": {"import": imported - start, **result.timings},
        "end_to_end_s": finished - imported,
        "end_to_end_cpu_s": cpu,
        "cpu_by_stage": cpu_by_stage(marks),
        "peak_python_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_solver_mb": solver_kb / 1024,
        "model_size": result.model_size,
        "outputs": sorted(p.name for p in out.iterdir()),
        "load_average": os.getloadavg(),
    }


def run_spopt(folder: Path, size: Size) -> dict:
    """spopt's MCLP on the same files, in this (fresh) process: read, distances, model, CBC.

    The same instance as carecheck's: demand points and sites projected to ``WORKING_CRS``,
    straight-line distance ≤ the radius covers, the existing facilities forced open
    (``predefined_facilities_arr``; spopt counts them in ``p_facilities``, so p + existing),
    the objective the covered weight — carecheck's ``objective`` (covered before + new).
    """
    import geopandas as gpd
    import pandas as pd
    import pulp
    from scipy.spatial.distance import cdist
    from spopt.locate import MCLP

    imported = time.perf_counter()
    watcher = ChildPeak()
    watcher.start()
    demand = pd.read_csv(folder / "demand.csv")
    points = gpd.GeoSeries(gpd.points_from_xy(demand["lon"], demand["lat"]), crs=4326)
    demand_xy = np.column_stack(_xy(points.to_crs(WORKING_CRS)))
    layers = [
        gpd.read_file(folder / "sites.gpkg", layer=name, engine="pyogrio").to_crs(WORKING_CRS)
        for name in ("candidates", "existing")
    ]
    site_xy = np.vstack([np.column_stack(_xy(layer.geometry)) for layer in layers])
    predefined = np.zeros(len(site_xy), dtype=int)
    predefined[len(layers[0]) :] = 1
    cost = cdist(demand_xy, site_xy)
    model = MCLP.from_cost_matrix(
        cost,
        demand["elderly"].to_numpy(float),
        service_radius=size.radius_m,
        p_facilities=size.count + len(layers[1]),
        predefined_facilities_arr=predefined,
    )
    built = time.perf_counter()
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    solved = time.perf_counter()
    return {
        "status": pulp.LpStatus[model.problem.status],
        "objective": float(pulp.value(model.problem.objective)),
        "import_s": imported - _STARTED,
        "build_s": built - imported,
        "solve_s": solved - built,
        "peak_python_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_solver_mb": watcher.stop() / 1024,
    }


def _xy(geometry) -> tuple[np.ndarray, np.ndarray]:
    return geometry.x.to_numpy(), geometry.y.to_numpy()


def whole_process(scenario: Path, out: Path, *extra: str) -> dict:
    """``carecheck run`` as a planner starts it, a process of its own: wall seconds, the
    objective it wrote."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "carecheck", "run", str(scenario), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"carecheck run failed:\n{done.stderr[-3000:]}")
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    return {"seconds": seconds, "objective": document["objective"], "args": list(extra)}


def cpu_by_stage(marks: list[tuple[str, float]]) -> dict[str, float]:
    """CPU seconds between consecutive progress messages, keyed like ``result.timings``."""
    keys = {
        "load layers": "load",
        "reach": "reach",
        "reduce": "reduce",
        "build model": "build",
        "starting plan": "start",
        "solve": "solve",
        "verify": "verify",
        "reach areas": "areas",
        "write outputs": "write",
    }
    spent: dict[str, float] = {}
    for (name, cpu), (_, later) in pairwise(marks):
        key = next((v for k, v in keys.items() if name.startswith(k)), name)
        spent[key] = spent.get(key, 0.0) + later - cpu
    return spent


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (CBC runs as a child)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(argv: list[str]) -> int:
    """Entry point of the child processes: ``--child generate|run``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=("generate", "run", "spopt"))
    parser.add_argument("--size")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--solver")
    args = parser.parse_args(argv)
    if args.child == "generate":
        print(json.dumps({"scenario": str(generate(SIZES[args.size], args.seed, args.folder))}))
    elif args.child == "spopt":
        print(json.dumps(run_spopt(args.folder, SIZES[args.size])))
    else:
        report = run_pipeline(args.folder / "scenario.yaml", args.folder / "out", args.solver)
        print(json.dumps(report))
    return 0


def in_child(*args: str, python: str = sys.executable) -> dict:
    """Run this script in a fresh Python process and return the JSON it prints last."""
    done = subprocess.run([python, __file__, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- printing


STAGES = (
    "import", "load", "reach", "reduce", "build", "start", "solve", "verify", "areas", "write",
)  # fmt: skip


def report_lines(size: Size, report: dict, generate_s: float) -> list[str]:
    timings, cpu = report["timings"], report["cpu_by_stage"]
    stages = "  ".join(f"{k} {timings.get(k, 0.0):6.2f}" for k in STAGES)
    cpu_stages = "  ".join(f"{k} {cpu.get(k, 0.0):6.2f}" for k in STAGES if k != "import")
    slowest = max((k for k in STAGES if k != "import"), key=lambda k: cpu.get(k, 0.0))
    m = report["model_size"]
    lines = [
        f"{size.label:>5}: {size.n_demand:,} demand × {size.n_sites:,} candidates, "
        f"{size.n_existing} existing, r = {size.radius_m:g} m, p = {size.count}, "
        f"region {size.width_m / 1000:g} km wide (generated in {generate_s:.1f} s)",
        f"       stages, wall (s): {stages}",
        f"       stages, CPU (s):             {cpu_stages}",
        f"       end to end {report['end_to_end_s']:.2f} s wall, "
        f"{report['end_to_end_cpu_s']:.2f} s CPU (slowest stage: {slowest}); peak RSS python "
        f"{report['peak_python_mb']:,.0f} MB, solver {report['peak_solver_mb']:,.0f} MB; "
        f"load average {report['load_average'][0]:.1f}",
        f"       status {report['status']}, objective {report['objective']:,.0f}, verified "
        f"{report['verified']}; model: {m['demand_rows_after_reduction']:,} rows of "
        f"{m['demand_units']:,} demand, {m['candidates_after_reduction']:,} of "
        f"{m['candidates']:,} candidates, {m['nonzeros']:,} nonzeros",
    ]
    target = TARGETS_S.get(size.label)
    if target is not None:
        ok = report["end_to_end_s"] <= target
        lines.append(f"       target end to end ≤ {target:g} s: {'met' if ok else 'MISSED'}")
    memory = TARGET_MEMORY_MB.get(size.label)
    if memory is not None:
        peak = report["peak_python_mb"] + report["peak_solver_mb"]
        lines.append(
            f"       target memory < {memory:,.0f} MB: "
            f"{'met' if peak < memory else 'MISSED'} (python + solver peaks {peak:,.0f} MB)"
        )
    return lines


def processes(size: Size, folder: Path, spopt_python: str | None) -> dict:
    """carecheck's whole process — ``carecheck run`` with every handed-on file but map.html
    (``--no-map``) and with the data files only (``--data-only``) — and, given a Python with
    spopt, spopt's MCLP on the same instance, each in a process of its own."""
    scenario = folder / "scenario.yaml"
    plain = whole_process(scenario, folder / "out-cli", "--no-map")
    data = whole_process(scenario, folder / "out-data", "--data-only")
    print(
        f"       whole process: carecheck run --no-map {plain['seconds']:.2f} s, "
        f"--data-only {data['seconds']:.2f} s",
        flush=True,
    )
    target = TARGETS_PROCESS_S.get(size.label)
    if target is not None:
        print(
            f"       target whole process ≤ {target:g} s: --no-map "
            f"{'met' if plain['seconds'] <= target else 'MISSED'}, --data-only "
            f"{'met' if data['seconds'] <= target else 'MISSED'}",
            flush=True,
        )
    figures = {"carecheck": plain, "carecheck_data_only": data}
    if spopt_python is None:
        return figures
    start = time.perf_counter()
    spopt = in_child(
        "--child", "spopt", "--folder", str(folder), "--size", size.label, python=spopt_python
    )
    spopt["seconds"] = time.perf_counter() - start
    same = abs(spopt["objective"] - plain["objective"]) <= 1e-6 * max(1.0, plain["objective"])
    ratio, ratio_data = spopt["seconds"] / plain["seconds"], spopt["seconds"] / data["seconds"]
    print(
        f"       spopt MCLP, whole process {spopt['seconds']:.2f} s "
        f"(imports {spopt['import_s']:.2f}, model {spopt['build_s']:.2f}, "
        f"solve {spopt['solve_s']:.2f}; peak python {spopt['peak_python_mb']:,.0f} MB, solver "
        f"{spopt['peak_solver_mb']:,.0f} MB)",
        flush=True,
    )
    print(
        f"       ratio spopt / carecheck: {ratio:.1f}× (--data-only {ratio_data:.1f}×); "
        f"objectives carecheck {plain['objective']:,.0f}, spopt {spopt['objective']:,.0f} "
        f"({spopt['status']}): {'same' if same else 'DIFFERENT'}",
        flush=True,
    )
    wanted = TARGET_RATIO.get(size.label)
    if wanted is not None:
        print(
            f"       target ratio ≥ {wanted:g}×: --no-map {'met' if ratio >= wanted else 'MISSED'}"
            f", --data-only {'met' if ratio_data >= wanted else 'MISSED'}",
            flush=True,
        )
    return figures | {"spopt": spopt, "same": same}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--child" in argv:
        return child(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", choices=sorted(SIZES), default=[])
    parser.add_argument("--solver", choices=("cbc", "highs"), default="cbc")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", type=Path, default=None, help="keep files in this folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--process",
        action="store_true",
        help="also time `carecheck run` as a process of its own (--no-map and --data-only)",
    )
    parser.add_argument(
        "--spopt",
        metavar="PYTHON",
        default=None,
        help="also solve each instance with spopt's MCLP, in a process of this Python "
        "(one with spopt installed); implies --process",
    )
    args = parser.parse_args(argv)
    labels = args.size or list(SIZES)
    print(f"carecheck scale benchmark: solver {args.solver}, seed {args.seed}", flush=True)
    figures = []
    with tempfile.TemporaryDirectory(prefix="carecheck-scale-") as tmp:
        root = args.keep or Path(tmp)
        for label in labels:
            size = SIZES[label]
            folder = root / label
            folder.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            in_child(
                "--child",
                "generate",
                "--size",
                label,
                "--seed",
                str(args.seed),
                "--folder",
                str(folder),
            )
            generate_s = time.perf_counter() - start
            report = in_child("--child", "run", "--folder", str(folder), "--solver", args.solver)
            print("\n".join(report_lines(size, report, generate_s)), flush=True)
            figure = {"size": asdict(size), "generate_s": generate_s, **report}
            if args.process or args.spopt:
                figure["processes"] = processes(size, folder, args.spopt)
            figures.append(figure)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
