"""Network reach at scale: a generated road grid of ~100,000 segments, 20,000 demand points and
2,000 sites; prints the time of each step and the peak memory (issue target: reach < 20 s and
< 2 GB on 2 cores).

    python benchmarks/network.py [--edges 100000] [--demand 20000] [--sites 2000] [--minutes 15]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from carecheck.network import network_from_segments, network_reach, snap_points


def grid_network(n_edges: int, rng: np.random.Generator, spacing: float = 200.0):
    """A jittered street grid with ~n_edges segments, random speeds and some one-way streets."""
    side = int(np.sqrt(n_edges / 2)) + 1
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    nodes = np.column_stack([ii.ravel(), jj.ravel()]) * spacing
    nodes = nodes + rng.normal(0, spacing * 0.1, nodes.shape)
    index = ii * side + jj
    horizontal = np.column_stack([index[:-1, :].ravel(), index[1:, :].ravel()])
    vertical = np.column_stack([index[:, :-1].ravel(), index[:, 1:].ravel()])
    edges = np.vstack([horizontal, vertical])
    edges = edges[rng.permutation(len(edges))[:n_edges]]
    speed = rng.choice([20.0, 30.0, 50.0, 80.0], len(edges), p=[0.4, 0.3, 0.2, 0.1])
    oneway = rng.random(len(edges)) < 0.1
    extent = side * spacing
    return network_from_segments(
        nodes[edges[:, 0]], nodes[edges[:, 1]], speed_kmh=speed, oneway=oneway
    ), extent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--demand", type=int, default=20_000)
    parser.add_argument("--sites", type=int, default=2_000)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    network, extent = grid_network(args.edges, rng)
    t1 = time.perf_counter()
    demand = rng.uniform(0, extent, (args.demand, 2))
    sites = rng.uniform(0, extent, (args.sites, 2))
    demand_snap = snap_points(network, demand)
    site_snap = snap_points(network, sites)
    t2 = time.perf_counter()
    results = {}
    for label, kind, mode, reach in (
        ("walk 15 min", "travel_min", "walk", args.minutes),
        ("drive 15 min", "travel_min", "drive", args.minutes),
        ("1,000 m by road", "network_m", None, 1000.0),
    ):
        start = time.perf_counter()
        matrix = network_reach(
            network,
            demand_snap,
            site_snap,
            np.full(args.sites, reach),
            kind=kind,
            mode=mode or "walk",
        )
        results[label] = (time.perf_counter() - start, matrix.nnz)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"network: {network.n_nodes:,} nodes, {network.n_edges:,} segments, "
        f"{extent / 1000:.1f} km square; built in {t1 - t0:.2f} s"
    )
    print(f"snapping {args.demand:,} demand points and {args.sites:,} sites: {t2 - t1:.2f} s")
    for label, (seconds, nnz) in results.items():
        print(
            f"reach {label:>16}: {seconds:6.2f} s, {nnz:,} demand-site pairs "
            f"({nnz / args.demand:.1f} sites per demand point)"
        )
    print(f"peak memory (max RSS): {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
