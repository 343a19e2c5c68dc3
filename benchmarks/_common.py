"""Shared helpers for the benchmark scripts: data paths, Máximo instances, great-circle reach.

The Máximo et al. instances give nodes in degrees; the authors' code measures distance with the
spherical law of cosines on a sphere of radius 6,378,100 m and covers a node when d ≤ r
(inclusive). carecheck's :func:`~carecheck.coverage.reach_matrix` works on Euclidean
coordinates, so the great-circle reach is built in two steps (the "array-level core" path):

1. nodes become 3-D points on a sphere of radius R, and ``reach_matrix`` finds every pair
   whose chord is within a slightly inflated chord radius (a superset of the true pairs);
2. those candidate pairs are filtered by the exact law-of-cosines distance d ≤ r.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from carecheck.coverage import reach_matrix
from carecheck.heuristic import mip_start
from carecheck.model import (
    Problem,
    at_most_counts,
    build_milp,
    pad_counts,
    problem_from_reach,
    reduce_problem,
    selection_from_solution,
)
from carecheck.solve import SolverOptions, solve_milp

BENCHDATA = Path(__file__).resolve().parents[1].parent / "shared" / "benchdata"
MAXIMO = BENCHDATA / "mclp-maximo"
EARTH_RADIUS_M = 6_378_100.0  # as in the authors' Instance.java; 6,371,000 changes 18 rows
CHORD_SLACK = 1e-6  # relative inflation of the chord radius before the exact filter


# --------------------------------------------------------------------------- Máximo data


@dataclass(frozen=True)
class MaximoInstance:
    """One city: node coordinates in degrees (lat, lon) and integer demand, in file order."""

    name: str
    latlon: np.ndarray
    demand: np.ndarray


def read_maximo(path: Path) -> MaximoInstance:
    """Parse a TSPLIB-like Máximo instance (``NODE_COORD_SECTION`` then ``DEMAND_SECTION``)."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    header = {}
    for line in lines:
        if ":" in line:
            key, value = line.split(":", 1)
            header[key.strip()] = value.strip()
    n = int(header["DIMENSION"])
    start = lines.index("NODE_COORD_SECTION") + 1
    demand_start = lines.index("DEMAND_SECTION") + 1
    coords = np.array([line.split() for line in lines[start : start + n]], dtype=float)
    demand = np.array(lines[demand_start : demand_start + n], dtype=np.int64)
    if coords.shape != (n, 2) or len(demand) != n:
        raise ValueError(f"{path}: expected {n} nodes")
    return MaximoInstance(name=header.get("NAME", path.stem), latlon=coords, demand=demand)


def read_maximo_optima(path: Path = MAXIMO / "optima.csv") -> pd.DataFrame:
    """The 24 published rows, with ``city`` (file stem) and ``facilities`` (0-based arrays)."""
    table = pd.read_csv(path)
    table["city"] = table["instance_file"].str.replace(".txt", "", regex=False)
    table["facilities"] = [
        np.array(text.split(), dtype=np.int64) for text in table["facilities_0based"]
    ]
    return table


# --------------------------------------------------------------------------- distances


def law_of_cosines_m(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in metres (degrees in), exactly as ``distanciaCoord`` does it."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2) - np.radians(lon1)
    cosine = np.cos(p1) * np.cos(p2) * np.cos(dl) + np.sin(p1) * np.sin(p2)
    return np.arccos(np.clip(cosine, -1.0, 1.0)) * EARTH_RADIUS_M


def sphere_xyz(latlon: np.ndarray) -> np.ndarray:
    """Points on a sphere of radius R (metres), so chords are Euclidean distances."""
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    return EARTH_RADIUS_M * np.column_stack(
        [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]
    )


def great_circle_reach(latlon: np.ndarray, radius_m: float) -> sp.csr_matrix:
    """Demand × site reach (I = J): KD-tree chord query, then the exact law-of-cosines filter."""
    xyz = sphere_xyz(latlon)
    chord = 2.0 * EARTH_RADIUS_M * np.sin(radius_m / (2.0 * EARTH_RADIUS_M))
    rough = reach_matrix(xyz, xyz, chord * (1.0 + CHORD_SLACK) + 1e-3).tocoo()
    d = law_of_cosines_m(
        latlon[rough.row, 0], latlon[rough.row, 1], latlon[rough.col, 0], latlon[rough.col, 1]
    )
    keep = d <= radius_m
    n = len(latlon)
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (rough.row[keep], rough.col[keep])),
        shape=(n, n),
    )


def reduced_maximo_row(optima: pd.DataFrame, name: str) -> tuple[Any, Any]:
    """The published row ``CITY/p`` of ``optima`` and its reduced covering problem (the one
    facility type: ``reach``, ``row_weight``), reach by great-circle distance."""
    city, p = name.split("/")
    (row,) = [r for r in optima.itertuples() if r.city == city and int(r.p) == int(p)]
    instance = read_maximo(MAXIMO / row.instance_file)
    reach = great_circle_reach(instance.latlon, float(row.radius_m))
    (reduced,) = reduce_problem(problem_from_reach(reach, instance.demand, int(p))).types
    return row, reduced


def covered_demand_brute(
    latlon: np.ndarray, demand: np.ndarray, sites: np.ndarray, radius_m: float
) -> int:
    """Covered demand of ``sites`` from all node-to-site distances (no KD-tree, no CSR)."""
    sites = np.asarray(sites, dtype=np.int64)
    d = law_of_cosines_m(
        latlon[:, None, 0], latlon[:, None, 1], latlon[None, sites, 0], latlon[None, sites, 1]
    )
    return int(demand[(d <= radius_m).any(axis=1)].sum())


# --------------------------------------------------------------------------- solving


@dataclass
class RunRecord:
    """Everything one benchmark solve measured."""

    objective: float | None
    status: str
    bound: float | None
    gap: float | None
    opened: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    start_value: float | None = None
    start_found_s: float | None = None  # when the search first reached its plan


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (CBC runs as a child process)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def solve_reach(
    reach: sp.csr_matrix,
    weight: np.ndarray,
    count: int,
    options: SolverOptions,
    *,
    start_s: float = 20.0,
    workers: int = 1,
) -> RunRecord:
    """Reduce, build, find a starting plan and solve one exactly-``count`` MCLP; time each step.

    The same steps as the pipeline: the count solved as "at most" and the plan padded
    (``model.at_most_counts``, ``model.pad_counts``), reductions 1–4, ``heuristic.mip_start``
    for ``start_s`` seconds, ``solve_milp``; extra solver switches travel in ``options``.
    """
    t0 = time.perf_counter()
    problem: Problem = problem_from_reach(reach, weight, count)
    relaxed = at_most_counts(problem) or problem
    reduced = reduce_problem(relaxed)
    milp = build_milp(reduced)
    t1 = time.perf_counter()
    found = mip_start(reduced, milp, seconds=start_s, workers=workers) if start_s > 0 else None
    start = None if found is None else found.values
    t2 = time.perf_counter()
    cpu2 = cpu_seconds()
    outcome = solve_milp(milp, options, start=start)
    t3 = time.perf_counter()
    cpu3 = cpu_seconds()
    opened = np.zeros(0, dtype=np.int64)
    if outcome.values is not None:
        plan = selection_from_solution(reduced, outcome.values)
        opened = (pad_counts(problem, plan) or plan)[0]
    (rt,) = reduced.types
    return RunRecord(
        objective=outcome.objective,
        status=outcome.status,
        bound=outcome.bound,
        gap=outcome.gap,
        opened=opened,
        seconds={"model": t1 - t0, "start": t2 - t1, "solve": t3 - t2, "solve_cpu": cpu3 - cpu2},
        start_value=None if found is None else found.objective,
        start_found_s=None if found is None else found.found_s,
        size={
            "rows": len(rt.row_weight),
            "candidates": len(rt.candidates),
            "nonzeros": int(rt.reach.nnz),
            "constraints": milp.n_rows,
            "variables": milp.n_cols,
        },
    )
