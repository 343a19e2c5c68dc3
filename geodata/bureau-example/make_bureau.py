"""Write the bureau-style example: the example's synthetic data as a district bureau holds it.

    python geodata/bureau-example/make_bureau.py

From ``geodata/example`` (synthetic, see its make_example.py) it writes, into this folder:

- ``村庄老年人口.xlsx``: demand on the second sheet ``村庄`` (the first is a cover note), Chinese
  headers, coordinates in GCJ-02 as copied from Amap (高德);
- ``候选点位.csv``: one candidate list for both facility types (column 类型), GBK as Excel on
  Chinese Windows saves it, GCJ-02 coordinates, Chinese tiers and actions (新建 / 改扩建);
- ``现有设施.shp``: the existing institutions with a 类型 column, in CGCS2000 / 3-degree
  Gauss–Krüger CM 120E (EPSG:4549), attributes in GBK and no ``.cpg`` (as ArcMap 10 leaves it).

The district boundaries stay in ``geodata/example/example.gpkg``. Deterministic: the same files
every time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "example"
sys.path.insert(0, str(HERE.parents[1] / "src"))

from carecheck.coords import wgs84_to_gcj02  # noqa: E402

TIERS = {"town": "镇级", "village": "村级"}
ACTIONS = {"new": "新建", "expand": "改扩建"}


def main() -> None:
    demand = pd.read_csv(EXAMPLE / "demand.csv", encoding="utf-8-sig", dtype={"demand_id": str})
    lon, lat = wgs84_to_gcj02(demand["lon"].to_numpy(), demand["lat"].to_numpy())
    villages = pd.DataFrame(
        {
            "编号": demand["demand_id"],
            "村（社区）名": demand["name"],
            "所属区": demand["district"],
            "经度": lon.round(6),
            "纬度": lat.round(6),
            "60岁以上人口": demand["elderly"],
        }
    )
    with pd.ExcelWriter(HERE / "村庄老年人口.xlsx", engine="openpyxl") as book:
        note = pd.DataFrame({"说明": ["示例数据（合成），坐标为高德（GCJ-02）。数据见“村庄”页。"]})
        note.to_excel(book, sheet_name="说明", index=False)
        villages.to_excel(book, sheet_name="村庄", index=False)

    rows = []
    institutions = gpd.read_file(EXAMPLE / "example.gpkg", layer="institution_sites")
    embedded = gpd.read_file(EXAMPLE / "embedded_sites.geojson")
    for kind, frame in (("养老机构", institutions), ("社区嵌入式", embedded)):
        lon, lat = wgs84_to_gcj02(frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
        rows.append(
            pd.DataFrame(
                {
                    "编号": frame["site_id"],
                    "名称": frame["name"],
                    "类型": kind,
                    "层级": frame["tier"].map(TIERS) if "tier" in frame else None,
                    "建设方式": frame["action"].map(ACTIONS) if "action" in frame else "新建",
                    "造价（万元）": frame["cost"],
                    "床位": frame["beds"],
                    "所属区": frame["district"],
                    "经度": lon.round(6),
                    "纬度": lat.round(6),
                }
            )
        )
    pd.concat(rows, ignore_index=True).to_csv(HERE / "候选点位.csv", index=False, encoding="gbk")

    existing = gpd.read_file(EXAMPLE / "example.gpkg", layer="institutions")
    existing = gpd.GeoDataFrame(
        {
            "编号": existing["site_id"],
            "名称": existing["name"],
            "类型": "养老机构",
            "层级": existing["tier"].map(TIERS),
            "床位": existing["beds"],
        },
        geometry=existing.geometry,
        crs=existing.crs,
    ).to_crs("EPSG:4549")
    shp = HERE / "现有设施.shp"
    existing.to_file(shp, engine="pyogrio", encoding="GBK")
    shp.with_suffix(".cpg").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
