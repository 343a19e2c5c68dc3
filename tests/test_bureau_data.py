"""Bureau data as it is held: Excel sheets, GBK files, Amap coordinates, survey tables, one list
for several types — and every check that stops a silently wrong plan, with its message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from pyproj import Transformer

from carecheck.cli import main
from carecheck.config import load_scenario
from carecheck.coords import wgs84_to_bd09, wgs84_to_gcj02
from carecheck.data import load_layers
from carecheck.errors import DataError
from carecheck.pipeline import run_scenario

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DATA = ROOT / "geodata" / "example"


@pytest.fixture
def bureau(tmp_path):
    """The example scenario as a dict, its data copied into a folder with a Chinese name."""
    data = tmp_path / "民政局 数据"
    shutil.copytree(EXAMPLE_DATA, data)
    body = yaml.safe_load((ROOT / "scenarios" / "example.yaml").read_text(encoding="utf-8"))

    def fix(value):
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("../geodata/example/"):
            return str(data / value.removeprefix("../geodata/example/"))
        return value

    body = fix(body)
    return tmp_path, data, body


def _write(folder: Path, body: dict, name: str = "场景.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(DataError) as info:
        load_layers(load_scenario(path))
    return info.value.problems


def _demand() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE_DATA / "demand.csv", encoding="utf-8-sig", dtype={"demand_id": str})


def _selected(result) -> list[tuple[str, str]]:
    return sorted(zip(result.selected["type"], result.selected["id"], strict=True))


@pytest.fixture(scope="module")
def reference():
    """The example's plan on its own (WGS84) data."""
    return run_scenario(ROOT / "scenarios" / "example.yaml", write=False)


# --------------------------------------------------------------------------- formats


def test_xlsx_with_chinese_headers_on_a_second_sheet(bureau, reference):
    folder, data, body = bureau
    demand = _demand().rename(
        columns={"demand_id": "编号", "district": "区县", "name": "村名", "lon": "经度",
                 "lat": "纬度", "elderly": "老年人口"}
    )  # fmt: skip
    path = data / "村庄 名单.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        pd.DataFrame({"说明": ["见第二页"]}).to_excel(book, sheet_name="说明", index=False)
        demand.to_excel(book, sheet_name="村庄", index=False)
    body["demand"] = {
        **{"path": str(path), "sheet": "村庄", "id": "编号", "lon": "经度", "lat": "纬度"},
        **{"weight": "老年人口", "region": "区县", "name": "村名"},
    }
    result = run_scenario(_write(folder, body), write=False)
    assert _selected(result) == _selected(reference)
    assert result.objective == reference.objective
    source = result.to_json()["layers"]["demand"]
    assert (source["format"], source["sheet"], source["rows_read"]) == ("xlsx", "村庄", 1229)
    body["demand"]["sheet"] = "Sheet9"
    assert _problems(_write(folder, body)) == [
        f"{path} (sheet Sheet9): no sheet 'Sheet9'; the sheets are '说明', '村庄' (give one as "
        "`sheet:`)"
    ]


def test_gbk_csv_without_encoding_is_detected(bureau, reference):
    folder, data, body = bureau
    path = data / "demand_gbk.csv"
    _demand().to_csv(path, index=False, encoding="gbk")
    assert b"\xb6\xab\xba\xfe" in path.read_bytes()  # 东湖 in GBK
    body["demand"]["path"] = str(path)
    result = run_scenario(_write(folder, body), write=False)
    assert _selected(result) == _selected(reference)
    source = result.to_json()["layers"]["demand"]
    assert source["encoding"] == "gb18030"
    assert source["notes"] == ["not UTF-8: read as gb18030 (detected)"]
    assert set(result.demand["region"]) == {"东湖区", "西塘区", "南山区"}


def test_wrong_encoding_is_refused_naming_the_key(bureau):
    folder, data, body = bureau
    body["demand"]["encoding"] = "gbk"  # the file is UTF-8 with Chinese text
    problems = _problems(_write(folder, body))
    assert len(problems) == 1
    assert problems[0].startswith(f"{data / 'demand.csv'}: not gbk text (")
    assert "check `encoding:`" in problems[0]


def test_gbk_shapefile_without_cpg(bureau, reference):
    folder, data, body = bureau
    sites = gpd.read_file(data / "example.gpkg", layer="institution_sites")
    sites = sites.rename(columns={"site_id": "编号", "district": "区县", "tier": "层级"})
    path = data / "候选点.shp"
    sites.to_file(path, engine="pyogrio", encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)  # as ArcMap 10 on Chinese Windows leaves it
    assert "编号".encode("gbk") in path.with_suffix(".dbf").read_bytes()
    candidates = body["facilities"]["institution"]["candidates"]
    candidates.update(path=str(path), id="编号", region="区县", tier="层级")
    candidates.pop("layer")
    result = run_scenario(_write(folder, body), write=False)
    assert _selected(result) == _selected(reference)
    source = result.to_json()["layers"]["facilities.institution.candidates"]
    assert source["encoding"] == "GB18030"
    assert source["notes"] == ["no .cpg and not UTF-8: attributes read as GB18030 (GBK)"]


def test_cgcs2000_gauss_kruger_table_with_x_as_northing(bureau, reference):
    folder, data, body = bureau
    demand = _demand()
    to_gk = Transformer.from_crs("EPSG:4326", "EPSG:4549", always_xy=True)
    easting, northing = to_gk.transform(demand["lon"].to_numpy(), demand["lat"].to_numpy())
    # a Chinese survey table: X is the northing, Y the easting
    table = demand.drop(columns=["lon", "lat"]).assign(X=northing, Y=easting)
    path = data / "测量成果.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig")
    body["demand"] = {**body["demand"], "path": str(path), "crs": "EPSG:4549"}
    del body["demand"]["lon"], body["demand"]["lat"]
    body["demand"].update(x="Y", y="X")
    result = run_scenario(_write(folder, body), write=False)
    assert _selected(result) == _selected(reference)
    assert result.objective == reference.objective
    body["demand"].update(x="X", y="Y")  # read the survey convention literally: refused
    problems = _problems(_write(folder, body))
    assert len(problems) == 1
    assert "1229 of 1229 point(s) lie outside the area of use of EPSG:4549" in problems[0]
    assert (
        "give `x: Y` and `y: X` (x is the easting; Chinese survey tables call the " in (problems[0])
    )


def test_one_existing_list_split_by_filter(bureau, reference):
    folder, data, body = bureau
    homes = gpd.read_file(data / "example.gpkg", layer="institutions").assign(类型="养老机构")
    extra = homes.copy().assign(类型="社区嵌入式", site_id=lambda f: "X" + f["site_id"])
    combined = pd.concat([homes, extra], ignore_index=True)
    path = data / "现有设施.geojson"
    gpd.GeoDataFrame(combined, crs=homes.crs).to_file(path, driver="GeoJSON", engine="pyogrio")
    existing = body["facilities"]["institution"]["existing"]
    existing.update(path=str(path), filter={"类型": "养老机构"})
    existing.pop("layer")
    result = run_scenario(_write(folder, body), write=False)
    assert _selected(result) == _selected(reference)
    assert sorted(result.layers.facilities["institution"].existing["id"]) == sorted(
        homes["site_id"]
    )
    source = result.to_json()["layers"]["facilities.institution.existing"]
    assert (source["rows_read"], source["rows_kept"]) == (8, 4)
    existing["filter"] = {"类型": ["养老机构", "社区嵌入式"]}  # a list: any of them
    assert len(load_layers(load_scenario(_write(folder, body))).facilities["institution"]
               .existing) == 8  # fmt: skip
    existing["filter"] = {"类型": "敬老院"}
    assert _problems(_write(folder, body)) == [
        f"{path}: filter 类型: '敬老院' keeps no row; the values in '类型' are 养老机构, 社区嵌入式"
    ]
    existing["filter"] = {"种类": "养老机构"}
    assert _problems(_write(folder, body))[0].startswith(
        f"{path}: filter column '种类' not found; columns are "
    )


# --------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize(("kind", "forward"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_amap_and_baidu_coordinates_give_the_plan_of_the_true_points(
    bureau, reference, kind, forward
):
    folder, data, body = bureau
    demand = _demand()
    lon, lat = forward(demand["lon"].to_numpy(), demand["lat"].to_numpy())
    path = data / f"demand_{kind}.csv"
    demand.assign(lon=lon, lat=lat).to_csv(path, index=False, encoding="utf-8-sig")
    body["demand"]["path"] = str(path)
    shifted = run_scenario(_write(folder, body), write=False)  # read as WGS84: wrong
    body["demand"]["coords"] = kind
    result = run_scenario(_write(folder, body), write=False)
    assert _selected(result) == _selected(reference)
    assert result.objective == reference.objective
    assert np.allclose(result.demand["lon"], demand["lon"], atol=1e-8)
    assert shifted.coverage != result.coverage  # the ~500 m shift changes the coverage
    source = result.to_json()["layers"]["demand"]
    assert (source["coords"], source["converted_to"]) == (kind, "wgs84")


def test_coords_on_a_projected_table_is_refused(bureau):
    folder, _, body = bureau
    body["demand"].update(crs="EPSG:4549", coords="gcj02")
    del body["demand"]["lon"], body["demand"]["lat"]
    body["demand"].update(x="lon", y="lat")
    with pytest.raises(SystemExit) as info:
        main(["validate", str(_write(folder, body))])
    assert info.value.code == 2


def test_swapped_lon_lat_is_named(bureau, capsys):
    folder, _, body = bureau
    body["demand"].update(lon="lat", lat="lon")
    path = _write(folder, body)
    problems = _problems(path)
    assert problems == [
        f"{body['demand']['path']}: the columns 'lat' (longitude) and 'lon' (latitude) look "
        "swapped: 'lon' holds 121.582 at id D0001 (100% of the rows beyond ±90°); give "
        "`lon: lon` and `lat: lat`"
    ]
    with pytest.raises(SystemExit) as info:
        main(["validate", str(path)])
    assert info.value.code == 2
    assert "look swapped" in capsys.readouterr().err


def test_projected_crs_on_a_lon_lat_table_is_named(bureau):
    folder, _, body = bureau
    body["demand"]["crs"] = "EPSG:4549"
    problems = _problems(_write(folder, body))
    assert len(problems) == 1
    assert "1229 of 1229 point(s) lie outside the area of use of EPSG:4549" in problems[0]
    assert "The values look like longitudes and latitudes: drop `crs:`" in problems[0]


def test_empty_and_non_numeric_cells_are_named(bureau):
    folder, data, body = bureau
    demand = _demand().astype({"lon": object})
    demand.loc[2, "lon"] = "121.5E"
    demand.loc[7, "lat"] = np.nan
    path = data / "demand_bad.csv"
    demand.to_csv(path, index=False, encoding="utf-8-sig")
    body["demand"]["path"] = str(path)
    assert _problems(_write(folder, body)) == [
        f"{path}: 2 row(s) with an empty or non-numeric lon/lat cell: id D0003 (lon='121.5E', "
        "lat=29.831938), id D0008 (lon='121.590316', lat=empty); fill or delete them"
    ]


def test_layers_that_lie_apart_are_named(bureau):
    folder, data, body = bureau
    sites = gpd.read_file(data / "embedded_sites.geojson")
    sites = sites.set_geometry(sites.geometry.translate(xoff=0.5))  # ~48 km east: shifted
    path = data / "embedded_shifted.geojson"
    sites.to_file(path, driver="GeoJSON", engine="pyogrio")
    body["facilities"]["embedded"]["candidates"]["path"] = str(path)
    problems = _problems(_write(folder, body))
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{path} and {body['demand']['path']}: no embedded candidates site lies within its reach "
        "(800 m) of any demand point — the nearest is "
    )
    assert "The two layers lie apart" in problems[0]


def test_region_names_that_match_nothing_get_the_closest_name(bureau):
    folder, data, body = bureau
    sites = gpd.read_file(data / "embedded_sites.geojson")
    sites["district"] = sites["district"].replace({"东湖区": "东湖"})
    path = data / "embedded_renamed.geojson"
    sites.to_file(path, driver="GeoJSON", engine="pyogrio")
    body["facilities"]["embedded"]["candidates"]["path"] = str(path)
    regions = gpd.read_file(data / "example.gpkg", layer="districts")
    regions["district"] = regions["district"].replace({"西塘区": "西糖区"})
    regions_path = data / "boundaries.gpkg"
    regions.to_file(regions_path, layer="districts", engine="pyogrio")
    body["regions"]["path"] = str(regions_path)
    problems = _problems(_write(folder, body))
    demand_col = f"column 'district' of {body['demand']['path']}"
    assert problems == [
        f"{path}: region name(s) in column 'district' that match no demand region "
        f"({demand_col}): 东湖 (→ 东湖区?); spell them as the demand layer does",
        f"{regions_path} (column 'district'): boundary name(s) that match no demand region "
        f"({demand_col}): 西糖区 (→ 西塘区?); spell them as the demand layer does",
        f"{regions_path} (column 'district'): demand region(s) with no boundary: 西塘区 "
        "(→ 西糖区?); add the boundaries or spell the names alike",
    ]


def test_all_layers_problems_at_once(bureau, capsys):
    folder, _, body = bureau
    body["demand"].update(lon="lat", lat="lon")
    body["facilities"]["embedded"]["candidates"]["id"] = "编号"
    with pytest.raises(SystemExit) as info:
        main(["validate", str(_write(folder, body))])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "look swapped" in err and "column '编号' (mapped by `id:`) not found" in err
    assert "Traceback" not in err


def test_result_json_records_each_layer(bureau):
    folder, _, body = bureau
    out = folder / "out"
    run_scenario(_write(folder, body), out=out, map_html=False)
    layers = json.loads((out / "result.json").read_text(encoding="utf-8"))["layers"]
    assert set(layers) == {
        "demand",
        "facilities.institution.candidates",
        "facilities.institution.existing",
        "facilities.embedded.candidates",
    }
    assert layers["demand"]["path"] == "../民政局 数据/demand.csv"
    assert layers["demand"]["crs"] == "EPSG:4326"
    assert layers["facilities.institution.candidates"]["layer"] == "institution_sites"


def test_the_bureau_example_plans_as_the_example(reference, tmp_path, capsys):
    scenario = ROOT / "scenarios" / "bureau-example.yaml"
    out = tmp_path / "示例区"
    result = run_scenario(scenario, out=out, map_html=False)
    assert result.status == "optimal" and result.verification.ok
    assert result.objective == reference.objective
    renamed = {"institution": "养老机构", "embedded": "嵌入式"}
    assert _selected(result) == sorted((renamed[t], i) for t, i in _selected(reference))
    layers = json.loads((out / "result.json").read_text(encoding="utf-8"))["layers"]
    assert layers["demand"]["coords"] == "gcj02" and layers["demand"]["sheet"] == "村庄"
    assert layers["facilities.养老机构.candidates"]["encoding"] == "gb18030"
    assert layers["facilities.养老机构.existing"]["crs"] == "EPSG:4549"
    with pytest.raises(SystemExit) as info:
        main(["verify", str(out)])
    assert info.value.code == 0
