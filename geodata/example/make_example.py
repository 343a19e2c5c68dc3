"""Build the small synthetic example data set (seeded; run it to regenerate the files here).

Three made-up districts east of Ningbo's centre, ~400 demand points, candidate sites for care
institutions (tiers town / village, new or expand) and community-embedded homes, and a few
existing institutions. Nothing here is real: it exists to show and test carecheck quickly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

SEED = 20261128
HERE = Path(__file__).resolve().parent
DISTRICTS = [("东湖区", 121.50, 121.60), ("西塘区", 121.60, 121.70), ("南山区", 121.70, 121.80)]
LAT0, LAT1 = 29.80, 29.90


def build(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    out.mkdir(parents=True, exist_ok=True)
    districts = gpd.GeoDataFrame(
        {"district": [d[0] for d in DISTRICTS], "source": "synthetic (make_example.py)"},
        geometry=[box(x0, LAT0, x1, LAT1) for _, x0, x1 in DISTRICTS],
        crs=4326,
    )
    rows = []
    for name, x0, x1 in DISTRICTS:
        centres = np.column_stack([rng.uniform(x0 + 0.01, x1 - 0.01, 3),
                                   rng.uniform(LAT0 + 0.01, LAT1 - 0.01, 3)])
        for c, centre in enumerate(centres):
            n = int(rng.integers(100, 160))
            pts = centre + rng.normal(0, 0.008, size=(n, 2))
            pts[:, 0] = np.clip(pts[:, 0], x0 + 1e-4, x1 - 1e-4)
            pts[:, 1] = np.clip(pts[:, 1], LAT0 + 1e-4, LAT1 - 1e-4)
            elderly = np.maximum(1, np.round(rng.lognormal(4.0, 0.7, n))).astype(int)
            for k in range(n):
                rows.append((name, f"{name}{c + 1}片{k + 1}号社区", pts[k, 0], pts[k, 1],
                             elderly[k]))
    demand = pd.DataFrame(rows, columns=["district", "name", "lon", "lat", "elderly"])
    demand.insert(0, "demand_id", [f"D{k + 1:04d}" for k in range(len(demand))])
    demand["lon"] = demand["lon"].round(6)
    demand["lat"] = demand["lat"].round(6)
    demand.to_csv(out / "demand.csv", index=False, encoding="utf-8-sig")

    def sites(n: int, prefix: str) -> gpd.GeoDataFrame:
        pick = rng.choice(len(demand), size=n, replace=False)
        chosen = demand.iloc[np.sort(pick)]
        return gpd.GeoDataFrame(
            {
                "site_id": [f"{prefix}{k + 1:03d}" for k in range(n)],
                "name": [f"{d}候选点{k + 1}" for k, d in enumerate(chosen["district"])],
                "district": chosen["district"].to_numpy(),
            },
            geometry=gpd.points_from_xy(chosen["lon"], chosen["lat"]),
            crs=4326,
        )

    existing = sites(4, "E")
    existing["name"] = [f"{d}敬老院" for d in existing["district"]]
    existing["tier"] = "town"
    existing["beds"] = rng.integers(60, 150, len(existing))
    institution = sites(24, "I")
    institution["tier"] = np.where(np.arange(24) % 3 == 0, "town", "village")
    institution["action"] = "new"
    expand = existing.copy()
    expand["site_id"] = [f"X{k + 1:03d}" for k in range(len(expand))]
    expand["name"] = [f"{n}扩建" for n in expand["name"]]
    expand["action"] = "expand"
    expand = expand.drop(columns=["beds"])
    institution = pd.concat([institution, expand], ignore_index=True)
    institution["beds"] = np.where(institution["tier"] == "town", 120, 40)
    institution.loc[institution["action"] == "expand", "beds"] = 50
    institution["cost"] = np.where(
        institution["action"] == "expand", 600.0,
        np.where(institution["tier"] == "town", 2400.0, 800.0),
    )
    embedded = sites(30, "M")
    embedded["beds"] = rng.integers(10, 30, len(embedded))
    embedded["cost"] = (embedded["beds"] * 15.0).astype(float)
    for frame in (existing, institution, embedded):
        frame["source"] = "synthetic (make_example.py)"
    gpkg = out / "example.gpkg"
    if gpkg.exists():
        gpkg.unlink()
    districts.to_file(gpkg, layer="districts", engine="pyogrio")
    existing.to_file(gpkg, layer="institutions", engine="pyogrio")
    institution.to_file(gpkg, layer="institution_sites", engine="pyogrio")
    embedded.to_file(out / "embedded_sites.geojson", driver="GeoJSON", engine="pyogrio")


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
