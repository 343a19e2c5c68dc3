"""Read times of bureau-style layers: a 100,000-row .xlsx sheet and GBK CSV, with GCJ-02.

    python benchmarks/readers.py [--rows 100000]

Writes seeded test files to a temporary folder, then times ``carecheck.sources.read_source``
on each (reading, encoding detection, GCJ-02 → WGS84, range and area checks), and prints the
rows, seconds and what was detected. Also prints the conversion's round-trip error over
China.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Geod

from carecheck.config import LayerSpec
from carecheck.coords import gcj02_to_wgs84, wgs84_to_gcj02
from carecheck.sources import read_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    lon, lat = wgs84_to_gcj02(rng.uniform(121.0, 122.2, n), rng.uniform(29.2, 30.3, n))
    table = pd.DataFrame(
        {
            "编号": [f"V{k:06d}" for k in range(n)],
            "村名": [f"第{k}村" for k in range(n)],
            "所属镇": rng.choice(["石门镇", "横街镇", "集士港镇"], n),
            "经度": lon.round(6),
            "纬度": lat.round(6),
            "老年人口": rng.integers(1, 800, n),
        }
    )
    folder = Path(tempfile.mkdtemp())
    xlsx, csv = folder / "村庄.xlsx", folder / "村庄.csv"
    started = time.perf_counter()
    table.to_excel(xlsx, sheet_name="村庄", index=False, engine="openpyxl")
    print(f"(writing the test .xlsx took {time.perf_counter() - started:.1f} s)")
    table.to_csv(csv, index=False, encoding="gbk")
    for path in (xlsx, csv):
        spec = LayerSpec(path=path, id="编号", lon="经度", lat="纬度", coords="gcj02")
        started = time.perf_counter()
        frame, source = read_source(spec)
        seconds = time.perf_counter() - started
        print(
            f"{path.suffix:6} {len(frame):>8,} rows  {seconds:6.2f} s  "
            f"{path.stat().st_size / 1e6:5.1f} MB  encoding {source.encoding}  "
            f"coords {source.coords} → {source.converted_to}"
        )
    lon0, lat0 = rng.uniform(73.5, 135, n), rng.uniform(18, 53.5, n)
    x, y = gcj02_to_wgs84(*wgs84_to_gcj02(lon0, lat0))
    _, _, metres = Geod(ellps="WGS84").inv(lon0, lat0, x, y)
    print(f"GCJ-02 round trip over China, {n:,} points: max {metres.max():.2e} m")


if __name__ == "__main__":
    main()
