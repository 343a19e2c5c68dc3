"""The printable map (carecheck.printmap): paper, resolution, fonts, content, fallbacks."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyogrio
import pytest
from matplotlib import font_manager
from matplotlib.colors import to_rgba
from matplotlib.text import Text
from PIL import Image
from pypdf import PdfReader

import carecheck
from carecheck import printmap
from carecheck.cli import main
from carecheck.data import load_regions
from carecheck.errors import DataError
from carecheck.labels import LABELS
from carecheck.outdir import read_result
from carecheck.units import money

from .conftest import EXAMPLE, ROOT

BUREAU = ROOT / "scenarios" / "bureau-example.yaml"
MM_PER_INCH = 25.4
PT_PER_MM = 72 / 25.4
CJK_CHARS = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")


def solved(scenario: Path, out: Path) -> Path:
    """Run ``scenario`` into ``out`` and give the folder a plan.gpkg with a regions layer."""
    with pytest.raises(SystemExit) as stop:
        main(["run", str(scenario), "--out", str(out), "--no-map"])
    assert stop.value.code == 0
    gpkg = out / "plan.gpkg"
    if not gpkg.exists() or "regions" not in pyogrio.list_layers(gpkg)[:, 0]:
        spec = carecheck.load_scenario(scenario).regions
        assert spec is not None
        load_regions(spec).to_crs(32651).to_file(gpkg, layer="regions", engine="pyogrio")
    return out


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    # a path with a space and Chinese characters, as on a bureau PC
    return solved(EXAMPLE, tmp_path_factory.mktemp("printmap") / "示例 输出")


@pytest.fixture(scope="module")
def bureau(tmp_path_factory) -> Path:
    return solved(BUREAU, tmp_path_factory.mktemp("printmap") / "局内数据")


@pytest.fixture(scope="module")
def written(example: Path) -> list[Path]:
    return printmap.write_print_map(example)


def variant(folder: Path, out: Path, **changes) -> Path:
    """A copy of an output folder with keys of result.json changed."""
    shutil.copytree(folder, out)
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    document.update(changes)
    (out / "result.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return out


def texts(figure) -> list[Text]:
    return [t for t in figure.findobj(Text) if t.get_text().strip()]


def all_text(figure) -> str:
    return "\n".join(t.get_text() for t in texts(figure))


def font_file(text: Text) -> str:
    return str(font_manager.findfont(text.get_fontproperties(), fallback_to_default=False))


def glyphs(path: str) -> set[int]:
    return set(font_manager.get_font(path).get_charmap())


def needs_cjk_font() -> str:
    font = printmap.cjk_font()
    if font is None:
        pytest.skip("no CJK font installed (Debian: apt install fonts-noto-cjk)")
    return font


# --------------------------------------------------------------------------- the files


def test_writes_png_and_pdf_and_returns_their_paths(example: Path, written: list[Path]):
    assert written == [example / "map.png", example / "map.pdf"]
    assert all(p.stat().st_size > 10_000 for p in written)
    assert not list(example.glob(".*.tmp"))


def test_png_has_the_size_and_resolution_of_an_a3_sheet(written: list[Path]):
    with Image.open(written[0]) as image:
        width, height = image.size
        dpi = image.info["dpi"]
    assert width == pytest.approx(420 / MM_PER_INCH * printmap.PNG_DPI, abs=1)
    assert height == pytest.approx(297 / MM_PER_INCH * printmap.PNG_DPI, abs=1)
    assert dpi == pytest.approx((printmap.PNG_DPI, printmap.PNG_DPI), abs=0.01)
    assert printmap.PNG_DPI >= 150
    assert written[0].stat().st_size < 6_000_000


def test_pdf_is_one_a3_landscape_page_with_title_sites_and_regions(
    example: Path, written: list[Path]
):
    document = read_result(example)
    reader = PdfReader(written[1])
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert float(box.width) == pytest.approx(420 * PT_PER_MM, abs=1)
    assert float(box.height) == pytest.approx(297 * PT_PER_MM, abs=1)
    text = reader.pages[0].extract_text()
    assert document["title"] in text
    for label in printmap.site_labels(document).values():
        assert re.search(rf"\b{label}\b", text), label
    for site in document["selected"]:
        assert site["name"] in text  # the build-order key names every site
    for block in document["coverage"]["by_region"]:
        assert block["region"] in text
    assert reader.metadata.title == document["title"]


def test_a4_paper_from_outputs_paper(example: Path, tmp_path: Path):
    folder = variant(example, tmp_path / "a4", outputs={"paper": "A4"})
    png, pdf = printmap.write_print_map(folder)
    with Image.open(png) as image:
        assert image.size[0] == pytest.approx(297 / MM_PER_INCH * printmap.PNG_DPI, abs=1)
        assert image.size[1] == pytest.approx(210 / MM_PER_INCH * printmap.PNG_DPI, abs=1)
    box = PdfReader(pdf).pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx(
        (297 * PT_PER_MM, 210 * PT_PER_MM), abs=1
    )


def test_an_unknown_paper_or_language_is_a_data_error(example: Path, tmp_path: Path):
    folder = variant(example, tmp_path / "letter", outputs={"paper": "Letter"})
    with pytest.raises(DataError, match=r"outputs.paper must be one of \['A3', 'A4'\]"):
        printmap.print_figure(folder)
    folder = variant(example, tmp_path / "fr", lang="fr")
    with pytest.raises(DataError, match="lang must be one of"):
        printmap.print_figure(folder)


def test_missing_or_broken_inputs_are_data_errors(example: Path, tmp_path: Path):
    folder = variant(example, tmp_path / "no-csv")
    (folder / "demand_coverage.csv").unlink()
    with pytest.raises(DataError, match=r"demand_coverage\.csv: not found"):
        printmap.print_figure(folder)
    folder = variant(example, tmp_path / "bad-gpkg")
    (folder / "plan.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(DataError, match=r"plan\.gpkg: not a readable GeoPackage"):
        printmap.print_figure(folder)
    with pytest.raises(DataError, match=r"result\.json: not found"):
        printmap.write_print_map(tmp_path / "empty")


def test_without_plan_gpkg_the_map_has_no_shading(example: Path, tmp_path: Path):
    folder = variant(example, tmp_path / "no-gpkg")
    (folder / "plan.gpkg").unlink()
    figure = printmap.print_figure(folder)
    assert not [c for c in figure.axes[0].collections if c.get_gid() == "region-shading"]
    assert "区域覆盖率" not in all_text(figure)


# --------------------------------------------------------------------------- fonts


@pytest.mark.parametrize("which", ["example", "bureau"])
def test_every_text_is_drawn_with_the_cjk_font_and_has_its_glyphs(which, request):
    font = needs_cjk_font()
    figure = printmap.print_figure(request.getfixturevalue(which))
    cjk_files = {str(e.fname) for e in font_manager.fontManager.ttflist if e.name == font}
    chinese = [t for t in texts(figure) if CJK_CHARS.search(t.get_text())]
    assert len(chinese) > 20  # title, legend, names: the check below means something
    for text in texts(figure):
        path = font_file(text)
        assert path in cjk_files, (text.get_text(), path)
        missing = {ch for ch in text.get_text() if not ch.isspace() and ord(ch) not in glyphs(path)}
        assert not missing, (text.get_text(), missing)


def test_without_a_cjk_font_the_map_is_english_with_a_warning(
    bureau: Path, tmp_path: Path, monkeypatch, caplog
):
    monkeypatch.setattr(printmap, "cjk_font", lambda: None)
    assert "no Chinese (CJK) font" in printmap.font_note("zh")
    assert printmap.font_note("en") is None
    folder = variant(bureau, tmp_path / "no-font")
    with caplog.at_level(logging.WARNING, logger="carecheck.printmap"):
        paths = printmap.write_print_map(folder)
    assert any("no Chinese (CJK) font" in r.getMessage() for r in caplog.records)
    assert all(p.exists() for p in paths)
    figure = printmap.print_figure(folder)
    words = all_text(figure)
    assert "Legend" in words and "Build order" in words and "Plan summary" in words
    assert not CJK_CHARS.search(words)  # no Chinese place names, no boxes
    for text in texts(figure):  # and the Latin font draws every character
        path = font_file(text)
        assert all(ch.isspace() or ord(ch) in glyphs(path) for ch in text.get_text())
    document = read_result(folder)
    for site in document["selected"]:  # sites are named by id instead
        assert site["id"] in words


def test_english_map_keeps_chinese_place_names_when_a_font_exists(example: Path, tmp_path: Path):
    needs_cjk_font()
    figure = printmap.print_figure(variant(example, tmp_path / "en", lang="en"))
    words = all_text(figure)
    assert "Legend" in words and "Build order" in words
    assert "图例" not in words
    document = read_result(example)
    for block in document["coverage"]["by_region"]:
        assert block["region"] in words


def test_cjk_font_is_a_known_family_or_none():
    font = printmap.cjk_font()
    assert font is None or font in printmap.CJK_FAMILIES


def test_importing_the_module_does_not_load_matplotlib():
    code = "import sys, carecheck.printmap; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# --------------------------------------------------------------------------- content


def test_site_labels_are_type_letter_and_priority():
    document = {
        "types": {"institution": {}, "embedded": {}},
        "selected": [
            {"id": "b", "type": "institution", "priority": 2},
            {"id": "a", "type": "institution", "priority": 1},
            {"id": "m", "type": "embedded", "priority": 1},
        ],
    }
    assert printmap.site_labels(document) == {
        ("institution", "b"): "A2",
        ("institution", "a"): "A1",
        ("embedded", "m"): "B1",
    }
    one = {"types": {"x": {}}, "selected": [{"id": "s", "type": "x", "priority": 3}]}
    assert printmap.site_labels(one) == {("x", "s"): "3"}


def test_map_labels_every_new_site_by_priority(example: Path):
    document = read_result(example)
    figure = printmap.print_figure(example)
    on_map = {t.get_text() for t in figure.axes[0].texts}
    letters = {t: chr(ord("A") + k) for k, t in enumerate(document["types"])}
    for site in document["selected"]:
        assert f"{letters[site['type']]}{site['priority']}" in on_map


def test_regions_are_shaded_by_the_first_types_share_after_the_plan(example: Path):
    document = read_result(example)
    first = next(iter(document["types"]))
    regions = printmap.read_regions(example)
    assert regions is not None
    blocks = {b["region"]: b for b in document["coverage"]["by_region"]}
    expected = [
        to_rgba(
            printmap.share_colour(
                blocks[r]["types"][first]["covered_after"] / blocks[r]["demand_total"]
            ),
            printmap.REGION_ALPHA,
        )
        for r in regions["region"]
    ]
    figure = printmap.print_figure(example)
    fills = next(c for c in figure.axes[0].collections if c.get_gid() == "region-shading")
    assert np.allclose(fills.get_facecolors(), expected)
    legend = all_text(figure)
    assert f"区域覆盖率（规划后）：{LABELS['zh']['type'][first]}" in legend


def test_scale_bar_and_printed_scale_match_the_map(example: Path):
    figure = printmap.print_figure(example)
    ax = figure.axes[0]
    source = next(t.get_text() for t in texts(figure) if "比例尺 1:" in t.get_text())
    scale = float(re.search(r"1:([\d,]+)", source).group(1).replace(",", ""))
    width_mm = ax.get_position().width * 420
    x0, x1 = ax.get_xlim()
    assert (x1 - x0) * 1000 / width_mm == pytest.approx(scale, rel=1e-9)
    assert "EPSG:32651" in source  # drawn in the run's metric CRS
    bar = [t.get_text() for t in ax.texts if "公里" in t.get_text()]
    assert bar and re.fullmatch(r"\d+(\.\d+)? 公里", bar[0])


def test_source_line_names_the_data_files_carecheck_and_the_date(example: Path):
    document = read_result(example)
    source = all_text(printmap.print_figure(example))
    for layer in document["layers"].values():
        assert Path(layer["path"]).name in source
    assert f"carecheck {carecheck.__version__}" in source
    assert re.search(r"\d{4}-\d{2}-\d{2}", source)


def test_money_is_printed_with_its_unit(example: Path, tmp_path: Path):
    folder = variant(example, tmp_path / "unit", cost_unit="万元")
    words = all_text(printmap.print_figure(folder))
    assert money(read_result(folder)["total_cost"], "万元", "zh") in words


@pytest.mark.parametrize(
    ("needed", "scale"),
    [(1, 1), (1.1, 1.25), (240_000, 250_000), (251_000, 300_000), (770_000, 800_000)],
)
def test_nice_scale(needed, scale):
    assert printmap.nice_scale(needed) == pytest.approx(scale)


@pytest.mark.parametrize(("limit", "length"), [(4_400, 2_000), (6_000, 5_000), (9_999, 5_000)])
def test_nice_length(limit, length):
    assert printmap.nice_length(limit) == length


def test_a_geographic_working_crs_is_drawn_in_the_utm_zone():
    crs = printmap.drawing_crs({"crs": "EPSG:4326"}, np.array([121.5]), np.array([29.9]))
    assert crs.to_epsg() == 32651
    crs = printmap.drawing_crs({"crs": "EPSG:4549"}, np.array([121.5]), np.array([29.9]))
    assert crs.to_epsg() == 4549
