"""The interactive map (carecheck.maps): contents, escaping, offline assets, size and speed."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import carecheck
from carecheck import maps
from carecheck.data import load_regions
from carecheck.errors import CarecheckError, DataError
from carecheck.outdir import read_result

from .conftest import EXAMPLE, ROOT

NINGBO = ROOT / "scenarios" / "ningbo-2026.yaml"
HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT_BREAK = "</script><script>alert(2)</script>"
HOSTILE_REGION = "<svg onload=alert(3)>"
# a <script> or <link> element that loads something from the network
REMOTE_ASSET = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?https?:", re.I)


def run_outputs(scenario: Path, out: Path) -> tuple[Path, gpd.GeoDataFrame]:
    """Solve ``scenario`` into ``out``; returns the folder and the scenario's region layer."""
    loaded = carecheck.load_scenario(scenario)
    carecheck.run_scenario(loaded, out=out, compare=False)
    assert loaded.regions is not None
    return out, load_regions(loaded.regions)


def hostile_copy(
    folder: Path, regions: gpd.GeoDataFrame, out: Path
) -> tuple[Path, gpd.GeoDataFrame]:
    """A copy of an output folder whose names try to inject HTML and script.

    The first selected site is named ``HOSTILE``, the first existing facility and the first
    demand unit try to close the script element, the title carries a script tag, and the first
    region is renamed ``HOSTILE_REGION`` everywhere (result, demand table, region layer).
    """
    shutil.copytree(folder, out)
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    old_region = document["coverage"]["by_region"][0]["region"]
    document["title"] = "<script>alert(4)</script>规划"
    document["selected"][0]["name"] = HOSTILE
    document["existing"][0]["name"] = SCRIPT_BREAK
    document["coverage"]["by_region"][0]["region"] = HOSTILE_REGION
    for site in document["selected"]:
        if site.get("region") == old_region:
            site["region"] = HOSTILE_REGION
    (out / "result.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    geojson = json.loads((out / "selected_sites.geojson").read_text(encoding="utf-8"))
    geojson["features"][0]["properties"]["name"] = HOSTILE
    (out / "selected_sites.geojson").write_text(
        json.dumps(geojson, ensure_ascii=False), encoding="utf-8"
    )
    demand = pd.read_csv(
        out / "demand_coverage.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False
    )
    demand.loc[0, "name"] = SCRIPT_BREAK
    demand.loc[demand["region"] == old_region, "region"] = HOSTILE_REGION
    demand.to_csv(out / "demand_coverage.csv", index=False, encoding="utf-8-sig")
    renamed = regions.copy()
    renamed.loc[renamed["region"] == old_region, "region"] = HOSTILE_REGION
    return out, renamed


def synthetic_outputs(folder: Path, out: Path, n: int, *, seed: int = 0) -> Path:
    """``folder``'s outputs with ``n`` demand points drawn around its own (for scale tests)."""
    out.mkdir(parents=True)
    shutil.copy(folder / "result.json", out / "result.json")
    shutil.copy(folder / "selected_sites.geojson", out / "selected_sites.geojson")
    demand = pd.read_csv(
        folder / "demand_coverage.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False
    )
    rng = np.random.default_rng(seed)
    rows = demand.iloc[rng.integers(0, len(demand), n)].reset_index(drop=True)
    rows["demand_id"] = [f"S{i:06d}" for i in range(n)]
    rows["lon"] = (rows["lon"].astype(float) + rng.normal(0, 0.01, n)).round(6)
    rows["lat"] = (rows["lat"].astype(float) + rng.normal(0, 0.01, n)).round(6)
    rows["weight"] = rng.integers(5, 400, n)
    rows.to_csv(out / "demand_coverage.csv", index=False, encoding="utf-8-sig")
    return out


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Path, gpd.GeoDataFrame]:
    return run_outputs(EXAMPLE, tmp_path_factory.mktemp("example") / "out")


@pytest.fixture(scope="module")
def ningbo(tmp_path_factory) -> tuple[Path, gpd.GeoDataFrame]:
    return run_outputs(NINGBO, tmp_path_factory.mktemp("ningbo") / "out")


def test_write_map_writes_map_html(example):
    folder, regions = example
    path = maps.write_map(folder, regions=regions)
    assert path == folder / "map.html"
    text = path.read_text(encoding="utf-8")
    document = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert text.startswith("<!DOCTYPE html>")
    assert document["title"] in text
    assert "carecheck.choropleth(" in text and "carecheck.demand(" in text
    # the region polygons are embedded once, whatever the number of facility types
    assert len(document["types"]) == 2
    assert text.count('"type":"FeatureCollection"') == 1
    assert not list(folder.glob(".map.html*")), "temporary file left behind"


def test_map_data_matches_the_outputs(example):
    folder, regions = example
    document = read_result(folder)
    demand = maps.read_demand(folder)
    data = maps.map_data(document, demand, regions=regions)
    assert [s["id"] for s in data["sites"]["selected"]] == [s["id"] for s in document["selected"]]
    assert len(data["sites"]["existing"]) == len(document["existing"])
    d = data["demand"]
    assert len(d["x"]) == len(demand) == len(d["status"][0])
    # coordinates survive the compact integer encoding to about a metre
    lon = np.sort(d["lon0"] + np.asarray(d["x"]) / d["scale"])
    assert lon == pytest.approx(np.sort(demand["lon"].astype(float)), abs=1e-5)
    # status codes: covered before → 1, newly covered → 2, else 0
    first = next(iter(document["types"]))
    codes = np.frombuffer(d["status"][0].encode("ascii"), np.uint8) - ord("0")
    assert (codes == 1).sum() == (demand[f"covered_before_{first}"] == "1").sum()
    newly = (demand[f"covered_after_{first}"] == "1") & (demand[f"covered_before_{first}"] == "0")
    assert (codes == 2).sum() == newly.sum()
    shares = {i["name"]: i["share"][0] for i in data["regions"]["info"]}
    for block in document["coverage"]["by_region"]:
        c = block["types"][first]
        assert shares[block["region"]] == pytest.approx(
            c["covered_after"] / block["demand_total"], abs=1e-4
        )


def test_data_text_is_escaped(example, tmp_path):
    folder, regions = hostile_copy(*example, tmp_path / "hostile")
    text = maps.html_from_outputs(folder, regions=regions)
    for raw in (HOSTILE, SCRIPT_BREAK, HOSTILE_REGION, "<script>alert(4)"):
        assert raw not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;svg onload=alert(3)&gt;" in text
    assert "&lt;script&gt;alert(4)&lt;/script&gt;规划" in text
    # the script-closing name did not close anything: as many </script> as in a clean map
    clean = maps.html_from_outputs(example[0], regions=example[1])
    assert text.count("</script>") == clean.count("</script>")


def test_safe_json_cannot_close_a_script_element():
    text = maps.safe_json({"name": "</script><!-- \u2028"})
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == {"name": "</script><!-- \u2028"}


def test_map_needs_no_network(example):
    folder, regions = example
    page = maps.html_from_outputs(folder, regions=regions)
    assert not REMOTE_ASSET.search(page)
    # Leaflet and both plugins are inlined (Leaflet's stylesheet has its images inside)
    assert len(maps._asset_urls()) == 6
    for _, url in maps._asset_urls():
        copy = maps._offline_copy(url).strip()
        assert copy[-300:] in page, url
    # tile layers are still offered (hidden at first: the vector-only base layer is shown)
    assert "tile.openstreetmap.org" in page
    assert "carecheck.tiles(" in page


def test_map_names_a_missing_asset(example, monkeypatch):
    monkeypatch.setattr(
        maps, "_asset_urls", lambda: [("js", "https://cdn.example.invalid/leaflet.js")]
    )
    with pytest.raises(CarecheckError, match=r"has no copy of https://cdn\.example\.invalid"):
        maps.html_from_outputs(example[0])


def test_languages(example):
    folder, regions = example
    zh = maps.html_from_outputs(folder, regions=regions, lang="zh")
    en = maps.html_from_outputs(folder, regions=regions, lang="en")
    region = read_result(folder)["coverage"]["by_region"][0]["region"]
    for label in ("规划摘要", "图例", "新选址", "无底图"):
        assert label in zh and label not in en
    for label in ("Plan summary", "Legend", "Selected sites", "No tiles"):
        assert label in en and label not in zh
    # place names stay Chinese either way
    assert region in zh and region in en
    with pytest.raises(ValueError, match="lang must be one of"):
        maps.html_from_outputs(folder, lang="fr")


def test_map_without_regions(example):
    text = maps.html_from_outputs(example[0], regions=None)
    assert "carecheck.choropleth(" not in text and "carecheck.demand(" in text


def test_missing_outputs_are_named(tmp_path):
    with pytest.raises(DataError, match=r"result\.json: not found; run `carecheck run"):
        maps.write_map(tmp_path)
    (tmp_path / "result.json").write_text("[]", encoding="utf-8")
    with pytest.raises(DataError, match="expected a JSON object"):
        maps.write_map(tmp_path)
    (tmp_path / "result.json").write_text('{"types": {}}', encoding="utf-8")
    with pytest.raises(DataError, match=r"missing key\(s\) \['selected', 'coverage'\]"):
        maps.write_map(tmp_path)


def test_regions_in_a_projected_crs(example):
    folder, regions = example
    document, demand = read_result(folder), maps.read_demand(folder)
    lonlat = maps.map_data(document, demand, regions=regions)
    projected = maps.map_data(document, demand, regions=regions.to_crs(32651))
    assert np.asarray(projected["bounds"]) == pytest.approx(np.asarray(lonlat["bounds"]))
    assert projected["regions"]["info"] == lonlat["regions"]["info"]


def test_regions_need_a_region_column(example):
    folder, regions = example
    with pytest.raises(DataError, match="a `region` column is needed"):
        maps.html_from_outputs(folder, regions=regions.rename(columns={"region": "name"}))


def test_ningbo_map_is_small_enough_to_email(ningbo):
    folder, regions = ningbo
    text = maps.html_from_outputs(folder, regions=regions)
    size = len(text.encode("utf-8"))
    assert size < 10_000_000, f"{size:,} bytes"
    assert text.count('"type":"FeatureCollection"') == 1


@pytest.mark.slow
def test_100000_demand_points(ningbo, tmp_path):
    folder = synthetic_outputs(ningbo[0], tmp_path / "big", 100_000)
    started = time.perf_counter()
    path = maps.write_map(folder, regions=ningbo[1])
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    print(f"100,000 demand points: {size / 1e6:.1f} MB in {seconds:.1f} s")
    assert size < 15_000_000
    assert seconds < 60
