"""Spreadsheet formulas and Markdown/HTML in user data never reach a planner's Excel or report."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from carecheck.cli import main
from carecheck.textsafe import (
    from_spreadsheet_cell,
    markdown_text,
    spreadsheet_cell,
)

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "+1+1",
    "-x",
    "\tx",
    "\rx",
    "'quoted",
]
IDS = [value for value in HOSTILE if value.strip() == value] + ["ok", "ok2"]


@pytest.mark.parametrize("value", HOSTILE)
def test_spreadsheet_cells_are_neutralised_and_read_back(value):
    cell = spreadsheet_cell(value)
    assert cell == "'" + value
    assert from_spreadsheet_cell(cell) == value


@pytest.mark.parametrize("value", ["-5", "+3.25", "-1e5", "plain", "东湖区", "a=b"])
def test_ordinary_cells_are_kept(value):
    assert spreadsheet_cell(value) == value


def test_markdown_text_shows_itself():
    text = markdown_text("x\n## injected <img src=x onerror=alert(1)>\r[a](b) *c* | d_e")
    assert "\n" not in text and "\r" not in text
    assert "<img" not in text and "&lt;img" in text
    assert text == ("x ## injected &lt;img src=x onerror=alert(1)&gt; \\[a\\](b) \\*c\\* \\| d\\_e")


@pytest.fixture
def hostile_example(tmp_path):
    """The example scenario whose demand ids and embedded-site names are hostile."""
    data = tmp_path / "数据 dir"
    shutil.copytree(ROOT / "geodata" / "example", data)
    with (data / "demand.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    for k, value in enumerate(HOSTILE, start=1):
        rows[k][0] = IDS[k - 1]  # demand ids (ids are read with white space trimmed)
        rows[k][2] = value  # names
    with (data / "demand.csv").open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    sites = json.loads((data / "embedded_sites.geojson").read_text(encoding="utf-8"))
    for feature in sites["features"]:
        feature["properties"]["name"] = "## injected <img src=x onerror=alert(1)> =1+1"
    (data / "embedded_sites.geojson").write_text(json.dumps(sites), encoding="utf-8")
    text = (ROOT / "scenarios" / "example.yaml").read_text(encoding="utf-8")
    text = text.replace("../geodata/example/", "数据 dir/")
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(text, encoding="utf-8")
    return scenario


def test_outputs_of_hostile_data_are_safe_and_verify(hostile_example, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["run", str(hostile_example), "--out", str(out), "--no-map"])
    assert info.value.code == 0
    with (out / "demand_coverage.csv").open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    cells = [cell for row in table for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "@", "\t", "\r") or c.startswith("+1")]
    ids = [row[0] for row in table[1:]]
    assert [from_spreadsheet_cell(i) for i in ids[: len(IDS)]] == IDS
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "<img" not in report
    assert not [line for line in report.splitlines() if line.startswith("## injected")]
    assert "&lt;img src=x onerror=alert(1)&gt;" in report  # the selected sites' names
    with pytest.raises(SystemExit) as info:  # the ids read back: verify agrees
        main(["verify", str(out)])
    assert info.value.code == 0


def test_the_map_shows_the_names_as_they_are(hostile_example, tmp_path):
    from carecheck.maps import read_demand

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["run", str(hostile_example), "--out", str(out), "--no-map"])
    assert info.value.code == 0
    frame = read_demand(out)
    assert frame["demand_id"].tolist()[: len(IDS)] == IDS
    assert frame["name"].tolist()[: len(HOSTILE)] == HOSTILE
