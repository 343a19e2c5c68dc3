"""The working CRS keeps distances true; coordinate errors and overflowing weights are refused."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from pyproj import CRS, Geod

from carecheck.cli import main
from carecheck.config import load_scenario
from carecheck.data import load_layers
from carecheck.errors import DataError
from carecheck.geocheck import median_utm, scale_errors

ROOT = Path(__file__).resolve().parents[1]


def test_scale_errors_match_the_formulas():
    lat = np.array([0.0, 29.8, 45.0])
    mercator = scale_errors(CRS.from_epsg(3857), np.full(3, 121.5), lat)
    # spherical Mercator on the ellipsoid: close to 1/cos(latitude) − 1
    assert mercator == pytest.approx(1 / np.cos(np.radians(lat)) - 1, abs=0.005)
    utm = scale_errors(CRS.from_epsg(32651), np.array([123.0, 121.5]), np.array([29.8, 29.8]))
    assert utm[0] == pytest.approx(4e-4, abs=1e-6)  # k0 = 0.9996 on the central meridian
    assert utm[1] < 4e-4
    far = scale_errors(CRS.from_epsg(32651), np.array([0.0]), np.array([0.0]))
    assert far[0] == np.inf


def test_median_utm_is_not_dragged_by_outliers():
    lon = np.r_[np.full(99, 121.5), 0.0]
    lat = np.r_[np.full(99, 29.8), 0.0]
    assert median_utm(lon, lat) == CRS.from_epsg(32651)
    assert median_utm(np.array([-70.6]), np.array([-33.4])) == CRS.from_epsg(32719)


@pytest.fixture
def example(tmp_path):
    """A copy of the example scenario and data that a test may change."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "geodata" / "example", data)
    text = (ROOT / "scenarios" / "example.yaml").read_text(encoding="utf-8")
    scenario = tmp_path / "example.yaml"
    scenario.write_text(text.replace("../geodata/example/", "data/"), encoding="utf-8")
    return scenario


def _edit_demand(scenario: Path, change) -> None:
    path = scenario.parent / "data" / "demand.csv"
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    change(rows)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)


def _problems(scenario: Path) -> list[str]:
    with pytest.raises(DataError) as info:
        load_layers(load_scenario(scenario))
    return info.value.problems


def test_web_mercator_is_refused(example):
    example.write_text("crs: EPSG:3857\n" + example.read_text(encoding="utf-8"), encoding="utf-8")
    problems = _problems(example)
    assert problems[0].startswith(
        f"{example.parent / 'data' / 'demand.csv'}: the working CRS EPSG:3857 distorts "
        "distances by more than 1% at 1229 row(s)"
    )
    assert "15.4%" in problems[0] or "15.5%" in problems[0]
    assert "made for this area" in problems[0]


@pytest.mark.parametrize(("lon", "lat"), [("0", "0"), ("-179.5", "29.8"), ("116.4", "39.9")])
def test_a_wild_row_is_named_and_does_not_move_the_crs(example, lon, lat, capsys):
    def change(rows):
        rows[5][3], rows[5][4] = lon, lat

    _edit_demand(example, change)
    problems = _problems(example)
    assert len(problems) == 1
    assert "data/demand.csv: 1 row(s) lie far from all the others" in problems[0]
    named = re.search(r"id D0005 at \((\S+), (\S+)\), ([\d,]+) km away", problems[0])
    assert named is not None, problems[0]
    assert named is not None and named.group(1, 2) == (lon, lat)
    median = re.search(r"their median \(([\d.]+), ([\d.]+)\)", problems[0])
    assert median is not None
    # the distance on the ellipsoid (pyproj), not the formula of the check (a sphere)
    _, _, metres = Geod(ellps="WGS84").inv(
        float(median.group(1)), float(median.group(2)), float(lon), float(lat)
    )
    assert float(named.group(3).replace(",", "")) == pytest.approx(metres / 1000, rel=0.006)
    assert "probable coordinate errors" in problems[0]
    with pytest.raises(SystemExit) as info:
        main(["validate", str(example)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "id D0005" in err and "Traceback" not in err


def test_a_crs_of_another_zone_is_refused(example):
    example.write_text("crs: EPSG:32645\n" + example.read_text(encoding="utf-8"), encoding="utf-8")
    problems = _problems(example)
    assert (
        "the working CRS EPSG:32645 distorts distances by more than 1% at 1229 row(s)"
        in (problems[0])
    )


def test_the_automatic_crs_ignores_a_wild_row(example):
    from carecheck.data import working_crs

    def change(rows):
        rows[5][3], rows[5][4] = "0", "0"

    _edit_demand(example, change)
    scenario = load_scenario(example)
    from carecheck.data import read_layer

    assert working_crs(scenario, read_layer(scenario.demand)) == CRS.from_epsg(32651)


def test_overflowing_weights_are_refused(example):
    def change(rows):
        for row in rows[1:4]:
            row[5] = "1e307"
        rows[4][5] = "inf"

    _edit_demand(example, change)
    problems = _problems(example)
    assert any("weight" in p and ("inf" in p or "number" in p) for p in problems), problems


def test_weights_beyond_integer_precision_are_refused(example):
    def change(rows):
        for row in rows[1:4]:
            row[5] = "1e308"
        rows[4][5] = "5e15"

    _edit_demand(example, change)
    problems = _problems(example)
    assert len(problems) == 1
    assert "column 'elderly': the weights add up to inf, more than 2^53" in problems[0]
    assert "the largest: id D0001=1e+308, id D0002=1e+308, id D0003=1e+308" in problems[0]


def test_weights_just_past_integer_precision_are_refused(example):
    def change(rows):
        rows[1][5] = "5e15"
        rows[2][5] = "4.1e15"

    _edit_demand(example, change)
    problems = _problems(example)
    assert "the weights add up to 9.1e+15, more than 2^53" in problems[0]


def test_objective_weights_beyond_integer_precision_are_refused(example):
    text = example.read_text(encoding="utf-8").replace(
        "objective: max_coverage",
        "objective: {kind: max_coverage, weights: {institution: 1e300}}",
    )
    example.write_text(text, encoding="utf-8")
    problems = _problems(example)
    assert len(problems) == 1
    assert problems[0].startswith("scenario → objective.weights: the objective weights times")


def test_a_longitude_beyond_180_is_named(example):
    def change(rows):
        rows[5][3] = "181"

    _edit_demand(example, change)
    assert _problems(example) == [
        f"{example.parent / 'data' / 'demand.csv'}: 1 row(s) with 'lon' beyond ±180°: id D0005 "
        "(lon=181); correct them (or give `x:`/`y:` and `crs:` for a projected table)"
    ]
