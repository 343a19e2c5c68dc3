"""What a bureau hands on, opened back with each format's own reader: plan.gpkg (pyogrio),
shapefiles/ (pyogrio, with the .cpg's encoding), plan.xlsx (openpyxl); their content against
result.json and demand_coverage.csv; and ``carecheck map OUTDIR --lang en`` redrawing them."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest

from carecheck.cli import main
from carecheck.config import load_scenario
from carecheck.gis import LAYERS, plan_layers, shapefile_names, write_shapefiles
from carecheck.pipeline import run_scenario

from .conftest import EXAMPLE

HAND_DEMAND = [
    {"id": "a", "x": 0.0, "y": 0.0, "w": 10, "region": "东区"},
    {"id": "b", "x": 2000.0, "y": 0.0, "w": 20, "region": "东区"},
    {"id": "c", "x": 9000.0, "y": 0.0, "w": 7, "region": "西区"},
]
HAND_SITES = [
    {"id": "s1", "x": 0.0, "y": 100.0, "name": "=HYPERLINK(1)", "cost": 5.0},
    {"id": "s2", "x": 2000.0, "y": 100.0, "name": "二号村", "cost": 7.5},
    {"id": "s3", "x": 2100.0, "y": 0.0, "name": "三号村", "cost": 1.0},
]


@pytest.fixture(scope="module")
def example_run(tmp_path_factory) -> Path:
    scenario = load_scenario(EXAMPLE).model_copy(update={"cost_unit": "万元"})
    out = tmp_path_factory.mktemp("deliver") / "示例 输出"
    run_scenario(scenario, out=out)
    return out


def _document(out: Path) -> dict:
    return json.loads((out / "result.json").read_text(encoding="utf-8"))


def _demand(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "demand_coverage.csv", encoding="utf-8-sig", dtype={"demand_id": str})


def test_every_file_is_written(example_run):
    names = {p.name for p in example_run.iterdir()}
    assert {"plan.gpkg", "plan.xlsx", "map.png", "map.pdf", "report.docx", "report.md"} <= names
    assert "shapefiles" not in names  # only when asked


def test_gpkg_layers_agree_with_the_result(example_run):
    document = _document(example_run)
    path = example_run / "plan.gpkg"
    assert [str(n) for n, _ in pyogrio.list_layers(path)] == list(LAYERS)
    crs = document["outputs"]["crs"]
    selected = pyogrio.read_dataframe(path, layer="selected_sites")
    assert selected.crs == crs and selected.crs.is_projected
    expected = sorted(document["selected"], key=lambda s: (s["type"], s["priority"]))
    assert selected["id"].tolist() == [s["id"] for s in expected]
    assert selected["priority"].tolist() == [s["priority"] for s in expected]
    assert selected["cost"].sum() == pytest.approx(document["total_cost"])
    # the points are where result.json says (lon/lat → the layer's CRS and back)
    back = selected.to_crs("EPSG:4326")
    assert np.allclose(back.geometry.x, [s["lon"] for s in expected], atol=1e-6)
    existing = pyogrio.read_dataframe(path, layer="existing_sites")
    assert sorted(existing["id"]) == sorted(s["id"] for s in document["existing"])

    demand = pyogrio.read_dataframe(path, layer="demand")
    table = _demand(example_run)
    assert demand["demand_id"].tolist() == table["demand_id"].tolist()
    for t in document["types"]:
        flags = demand[f"covered_after_{t}"].to_numpy()
        assert (flags == table[f"covered_after_{t}"].to_numpy()).all()
        covered = float((demand["weight"] * flags).sum())
        assert covered == pytest.approx(document["coverage"]["types"][t]["covered_after"])
        assert demand[f"nearest_{t}_m"].to_numpy() == pytest.approx(
            table[f"nearest_{t}_m"].to_numpy(), nan_ok=True
        )

    regions = pyogrio.read_dataframe(path, layer="regions")
    by_region = {b["region"]: b for b in document["coverage"]["by_region"]}
    assert sorted(regions["region"]) == sorted(by_region)
    for row in regions.to_dict(orient="records"):
        block = by_region[row["region"]]
        for t in document["types"]:
            after = block["types"][t]["covered_after"]
            assert row[f"covered_after_{t}"] == pytest.approx(after)
            assert row[f"share_after_{t}"] == pytest.approx(after / block["demand_total"])

    reach = pyogrio.read_dataframe(path, layer="reach")
    assert len(reach) == len(document["selected"]) + len(document["existing"])
    radius = {(s["type"], s["id"]): s["radius_m"] for s in document["selected"]}
    for row in reach[reach["status"] == "selected"].itertuples():
        r = radius[(row.type, row.id)]
        assert row.geometry.area == pytest.approx(math.pi * r * r, rel=0.01)  # a circle


def test_shapefiles_in_gbk_keep_chinese_names_and_short_fields(example_run, tmp_path):
    layers = plan_layers(example_run, None)
    written = write_shapefiles(tmp_path / "shp", layers, encoding="GBK")
    assert (tmp_path / "shp" / "demand.cpg").read_text(encoding="ascii").strip() in ("GBK", "936")
    names = pyogrio.read_dataframe(tmp_path / "shp" / "selected_sites.shp", encoding="GBK")[
        "name"
    ].tolist()
    assert names == layers["selected_sites"]["name"].tolist()
    assert any("\u4e00" <= ch <= "\u9fff" for name in names for ch in name)
    # the bytes really are GBK, not UTF-8 (ArcMap 10.x reads the system code page)
    raw = (tmp_path / "shp" / "selected_sites.dbf").read_bytes()
    assert names[0].encode("gbk") in raw and names[0].encode("utf-8") not in raw
    for path in written[:-1]:
        fields = pyogrio.read_info(path)["fields"]
        assert all(len(f) <= 10 for f in fields)
    with (tmp_path / "shp" / "fields.csv").open(encoding="utf-8-sig", newline="") as handle:
        listing = list(csv.DictReader(handle))
    demand = [r for r in listing if r["layer"] == "demand"]
    assert {r["gpkg_column"] for r in demand} == set(layers["demand"].columns) - {"geometry"}


def test_shapefile_names_are_short_and_unique():
    columns = ["covered_before_institution", "covered_before_institutions", "ID", "id", "x" * 12]
    names = shapefile_names(columns)
    assert all(len(n) <= 10 for n in names.values())
    assert len({n.lower() for n in names.values()}) == len(columns)


def test_run_with_shapefile_flag(make_case, tmp_path):
    path = make_case(HAND_DEMAND, {"home": {"radius_m": 500, "count": 2, "candidates": HAND_SITES}})
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["run", str(path), "--out", str(out), "--no-map", "--shapefile"])
    assert info.value.code == 0
    shp = out / "shapefiles"
    assert (shp / "selected_sites.cpg").read_text(encoding="ascii").strip() == "UTF-8"
    back = pyogrio.read_dataframe(shp / "selected_sites.shp")
    assert sorted(back["id"]) == ["s1", "s2"]


def _sheet(book: openpyxl.Workbook, name: str) -> list[tuple]:
    return list(book[name].iter_rows(values_only=True))


def test_workbook_agrees_with_the_result(example_run):
    document = _document(example_run)
    book = openpyxl.load_workbook(example_run / "plan.xlsx")
    assert book.sheetnames == ["建设选址", "区域覆盖", "未覆盖老年人口点", "方案比较", "设置与求解"]
    rows = _sheet(book, "建设选址")
    header = rows[0]
    assert header[:4] == ("设施类型", "顺序", "编号\nsite_id", "图上编号")
    assert "投资（万元）\ncost" in header  # the unit, and the planner's own column name
    ids, costs = header.index("编号\nsite_id"), header.index("投资（万元）\ncost")
    body = rows[1:]
    order = [
        s["id"]
        for t in document["types"]
        for s in sorted(
            (s for s in document["selected"] if s["type"] == t), key=lambda s: s["priority"]
        )
    ]
    assert [r[ids] for r in body] == order
    assert all(isinstance(r[costs], float | int) for r in body)  # numbers, not text
    assert sum(r[costs] for r in body) == pytest.approx(document["total_cost"])
    opened = document["types"]["institution"]["count_opened"]
    assert [r[1] for r in body if r[0] == "养老机构"] == list(range(1, opened + 1))
    assert [r[3] for r in body if r[0] == "养老机构"] == [f"A{k}" for k in range(1, opened + 1)]

    regions = _sheet(book, "区域覆盖")
    total = regions[-1]
    assert total[0] == "合计" and total[1] == document["coverage"]["demand_total"]
    after = regions[0].index("养老机构：规划后覆盖")
    assert total[after] == document["coverage"]["types"]["institution"]["covered_after"]
    assert book["区域覆盖"].cell(len(regions), after + 3).number_format == "0.0%"

    uncovered = _sheet(book, "未覆盖老年人口点")
    table = _demand(example_run)
    types = list(document["types"])
    missing = table[(table[[f"covered_after_{t}" for t in types]] == 0).any(axis=1)]
    assert len(uncovered) - 2 == len(missing)  # a note line and the header
    weights = [r[3] for r in uncovered[2:]]
    assert weights == sorted(weights, reverse=True)
    assert sorted(r[0] for r in uncovered[2:]) == sorted(missing["demand_id"])

    settings = [r[0] for r in _sheet(book, "设置与求解")]
    assert "规划问题" in settings and "求解与核验" in settings
    # one-table sheets filter from their header; the settings sheet (several tables) does not
    assert book["建设选址"].auto_filter.ref.startswith("A1:")
    assert book["未覆盖老年人口点"].auto_filter.ref.startswith("A2:")
    assert not book["设置与求解"].auto_filter.ref


def test_workbook_of_the_hand_instance(make_case, tmp_path):
    path = make_case(HAND_DEMAND, {"home": {"radius_m": 500, "count": 3, "candidates": HAND_SITES}})
    out = tmp_path / "out"
    run_scenario(path, out=out, map_html=False, map_lang="en")
    book = openpyxl.load_workbook(out / "plan.xlsx")
    assert book.sheetnames[0] == "Sites"
    rows = _sheet(book, "Sites")
    header = rows[0]
    got = [(r[header.index("priority")], r[header.index("id")]) for r in rows[1:]]
    assert got == [(1, "s2"), (2, "s1"), (3, "s3")]  # s2 adds 20, s1 10, s3 nothing
    marginal = header.index("elderly newly covered")
    assert [r[marginal] for r in rows[1:]] == [20, 10, 0]
    name = book["Sites"].cell(3, header.index("name") + 1)
    assert name.value == "=HYPERLINK(1)" and name.data_type == "s"  # text, not a formula
    uncovered = _sheet(book, "Not covered")
    assert [r[0] for r in uncovered[2:]] == ["c"]


def test_redraw_in_english_replaces_the_drawn_files(example_run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(example_run, out)
    gpkg = (out / "plan.gpkg").read_bytes()
    with pytest.raises(SystemExit) as info:
        main(["map", str(out), "--lang", "en"])
    assert info.value.code == 0
    assert _document(out)["lang"] == "en"
    assert openpyxl.load_workbook(out / "plan.xlsx").sheetnames[0] == "Sites"
    assert "## Sites to build, in priority order" in (out / "report.md").read_text(encoding="utf-8")
    assert (out / "plan.gpkg").read_bytes() == gpkg  # data layers are not redrawn
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".copy.tmp", ".copy.old"))]


def test_a_plan_with_no_sites_still_has_typed_layers(example_run, tmp_path):
    """Empty layers keep their geometry type (a GIS program otherwise shows them as lines)."""
    import shutil

    from carecheck.gis import write_gpkg

    folder = tmp_path / "empty"
    shutil.copytree(example_run, folder)
    document = _document(folder)
    document.update(selected=[], existing=[])
    (folder / "result.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    write_gpkg(folder, shapefile=True)
    types = dict(pyogrio.list_layers(folder / "plan.gpkg"))
    assert types["selected_sites"] == "Point" and types["reach"] == "MultiPolygon"
    info = pyogrio.read_info(folder / "shapefiles" / "selected_sites.shp")
    assert info["features"] == 0 and info["geometry_type"] == "Point"


def _xlsx_parts(path: Path) -> dict[str, bytes]:
    """Every part of a workbook but its creation time (docProps/core.xml)."""
    import zipfile

    with zipfile.ZipFile(path) as book:
        return {n: book.read(n) for n in book.namelist() if n != "docProps/core.xml"}


def _beside(monkeypatch, code: str | None = None) -> list:
    """Make every run 'large' on a two-core machine; returns the list of started processes."""
    import subprocess

    from carecheck import deliverables

    monkeypatch.setattr(deliverables, "BESIDE_BYTES", 0)
    monkeypatch.setattr(deliverables, "_usable_cores", lambda: 2)
    if code is not None:
        monkeypatch.setattr(deliverables, "_BESIDE_CODE", code)
    started: list = []
    real = subprocess.Popen

    def spy(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(deliverables.subprocess, "Popen", spy)
    return started


def _no_workbook_here(*args, **kwargs):
    raise AssertionError("plan.xlsx was written by this process, not the second one")


def test_a_large_runs_workbook_from_a_second_process_is_the_same_workbook(
    example_run, tmp_path, monkeypatch
):
    import shutil

    from carecheck import workbook
    from carecheck.deliverables import redraw

    out = tmp_path / "第二 进程"
    shutil.copytree(example_run, out)
    started = _beside(monkeypatch)
    monkeypatch.setattr(workbook, "write_xlsx", _no_workbook_here)  # in this process only
    redraw(out)
    assert len(started) == 1 and started[0].returncode == 0  # the workbook came from it
    assert _xlsx_parts(out / "plan.xlsx") == _xlsx_parts(example_run / "plan.xlsx")
    assert openpyxl.load_workbook(out / "plan.xlsx").sheetnames[0] == "建设选址"


def test_a_second_process_that_writes_nothing_does_not_pass_off_the_old_workbook(
    example_run, tmp_path, monkeypatch
):
    import shutil

    from carecheck import workbook
    from carecheck.deliverables import redraw

    out = tmp_path / "copy"
    shutil.copytree(example_run, out)
    _beside(monkeypatch, "pass")
    monkeypatch.setattr(workbook, "write_xlsx", _no_workbook_here)
    with pytest.raises(AssertionError, match="written by this process"):
        redraw(out, lang="en")
    assert openpyxl.load_workbook(out / "plan.xlsx").sheetnames[0] == "建设选址"  # untouched


def test_a_failed_second_process_leaves_the_workbook_to_this_one(
    example_run, tmp_path, monkeypatch, caplog
):
    import shutil

    from carecheck.deliverables import _WorkbookBeside

    folder = tmp_path / "copy"
    shutil.copytree(example_run, folder)
    started = _beside(
        monkeypatch, "import sys; print('没有 xlsxwriter', file=sys.stderr); sys.exit(3)"
    )
    with _WorkbookBeside(folder) as workbook:
        assert workbook.finish() == [folder / "plan.xlsx"]
    assert started[0].returncode == 3
    assert "ended with code 3" in caplog.text and "没有 xlsxwriter" in caplog.text
    assert _xlsx_parts(folder / "plan.xlsx") == _xlsx_parts(example_run / "plan.xlsx")


def test_the_second_process_is_stopped_when_another_writer_fails(tmp_path, monkeypatch):
    from carecheck.deliverables import _WorkbookBeside

    (tmp_path / "demand_coverage.csv").write_text("demand_id\n", encoding="utf-8")
    started = _beside(
        monkeypatch, "import sys, time; open(sys.argv[1] + '/plan.xlsx', 'w'); time.sleep(120)"
    )
    with pytest.raises(RuntimeError, match="the print map failed"), _WorkbookBeside(tmp_path):
        import time

        for _ in range(100):  # until the child has begun its file
            if (tmp_path / "plan.xlsx").exists():
                break
            time.sleep(0.05)
        raise RuntimeError("the print map failed")
    assert started[0].returncode is not None  # killed, not left running
    assert not (tmp_path / "plan.xlsx").exists()  # nor its half-written file


def test_no_second_process_where_it_would_not_be_the_same_program(tmp_path, monkeypatch):
    from carecheck import deliverables, objectives
    from carecheck.objectives.max_coverage import OBJECTIVE

    (tmp_path / "demand_coverage.csv").write_text("demand_id\n", encoding="utf-8")
    _beside(monkeypatch)
    assert deliverables._beside_worth_it(tmp_path)
    monkeypatch.setattr(objectives, "_REGISTERED", {"max_coverage": OBJECTIVE})
    assert not deliverables._beside_worth_it(tmp_path)  # the child would not know it
    monkeypatch.setattr(objectives, "_REGISTERED", {})
    monkeypatch.setattr(deliverables.sys, "executable", str(tmp_path / "qgis-bin.exe"))
    assert not deliverables._beside_worth_it(tmp_path)  # a host program, not Python
