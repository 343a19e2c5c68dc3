"""report.docx and the Markdown report: one content model, read back and checked against
result.json (python-docx for the Word file)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from PIL import Image

from carecheck.cli import main
from carecheck.errors import DataError
from carecheck.handout import (
    TABLE_STYLE,
    Table,
    build_template,
    markdown_report,
    report_blocks,
    template_path,
    write_docx,
)
from carecheck.report import compare_documents
from carecheck.units import money

from .conftest import EXAMPLE, ROOT

NINGBO = ROOT / "scenarios" / "ningbo-2026.yaml"
BASIS = "GB 50180-2018 十五分钟生活圈"


def _run(scenario: Path, out: Path) -> Path:
    with pytest.raises(SystemExit) as info:
        main(["run", str(scenario), "--out", str(out), "--no-map"])
    assert info.value.code == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The example and ningbo-2026 runs, each once per module."""
    base = tmp_path_factory.mktemp("handout")
    return {"example": _run(EXAMPLE, base / "example"), "ningbo": _run(NINGBO, base / "n26")}


def _folder(runs: dict[str, Path], tmp_path: Path, name: str, **changes) -> Path:
    """A copy of a run's folder, its result.json given the keys issue 21 adds (where they are
    not there yet) and ``changes``; no figures unless a test adds them."""
    folder = tmp_path / f"{name} 输出"  # a space and Chinese in the path
    shutil.copytree(runs[name], folder)
    for figure in ("map.png", "frontier.png"):
        (folder / figure).unlink(missing_ok=True)
    document = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    document.setdefault("lang", "zh")
    document.setdefault("created", "2026-05-01")
    if not document.get("cost_unit"):
        document["cost_unit"] = "万元"
    for spec in document["types"].values():
        if not spec.get("basis"):
            spec["basis"] = BASIS
    document.update(changes)
    (folder / "result.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return folder


def _document(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text(encoding="utf-8"))


def _read(folder: Path):
    (path,) = write_docx(folder)
    assert path == folder / "report.docx"
    return docx.Document(str(path))


def _text(word) -> str:
    cells = [c.text for t in word.tables for row in t.rows for c in row.cells]
    return "\n".join([*(p.text for p in word.paragraphs), *cells])


def _site_tables(word, first: str) -> list:
    return [t for t in word.tables if t.rows[0].cells[0].text == first]


def _column(table, header: str) -> list[str]:
    headers = [c.text for c in table.rows[0].cells]
    k = headers.index(header)
    return [row.cells[k].text for row in table.rows[1:]]


def _in_build_order(document: dict, type_name: str) -> list[str]:
    """The type's selected ids sorted by priority (recomputed here, not by the module)."""
    sites = [s for s in document["selected"] if s["type"] == type_name]
    assert sorted(s["priority"] for s in sites) == list(range(1, len(sites) + 1))
    return [s["id"] for s in sorted(sites, key=lambda s: s["priority"])]


def test_word_report_in_chinese(runs, tmp_path):
    folder = _folder(runs, tmp_path, "ningbo")
    document = _document(folder)
    word = _read(folder)
    text = _text(word)
    headings = [p.text for p in word.paragraphs if p.style.name.startswith("Heading")]
    for heading in ("摘要", "规划问题", "数据来源", "服务范围及依据", "建设选址（按建设顺序）"):
        assert heading in headings
    assert "覆盖情况（规划前 → 规划后）" in headings and "求解与核验" in headings
    assert word.paragraphs[0].style.name == "Title"
    assert word.paragraphs[0].text == document["title"]
    assert f"日期：{document['created']}" in text
    # sites: every selected id, per type, in priority order, in the type's table
    tables = _site_tables(word, "顺序")
    assert len(tables) == len(document["types"])
    for table, name in zip(tables, document["types"], strict=True):
        assert _column(table, "编号") == _in_build_order(document, name)
        assert _column(table, "顺序") == [str(k) for k in range(1, len(table.rows))]
        assert "投资（万元）" in [c.text for c in table.rows[0].cells]
        marginal = {s["id"]: s["marginal_weight"] for s in document["selected"]}
        assert _column(table, "新增覆盖老年人") == [
            f"{marginal[i]:,.0f}" for i in _column(table, "编号")
        ]
    assert {i for t in tables for i in _column(t, "编号")} == {
        s["id"] for s in document["selected"]
    }
    # the total cost as printed, with its unit and in 亿元
    assert money(document["total_cost"], "万元", "zh") in text
    assert "101,694.6 万元（约 10.17 亿元）" in text
    # coverage per type, never summed: the objective is named as what it is
    (coverage,) = _site_tables(word, "设施类型")[-1:]
    for row, (name, c) in zip(
        coverage.rows[1:], document["coverage"]["types"].items(), strict=True
    ):
        assert (
            row.cells[0].text == {"institution": "养老机构", "embedded": "社区嵌入式养老机构"}[name]
        )
        assert row.cells[2].text == f"{c['covered_before']:,.0f}"
        assert row.cells[3].text == f"{c['covered_after']:,.0f}"
    assert f"目标值（各类设施覆盖老年人数加权和）：{document['objective']:,.0f}" in text
    assert "GB 50180-2018" in text and "ningbo.gpkg（demand）" in text and "EPSG:32651" in text


def test_per_region_tables_per_type(runs, tmp_path):
    folder = _folder(runs, tmp_path, "ningbo")
    document = _document(folder)
    word = _read(folder)
    regions = _site_tables(word, "区域")
    assert len(regions) == len(document["types"])
    for table, name in zip(regions, document["types"], strict=True):
        expected = [
            f"{b['types'][name]['covered_after']:,.0f}" for b in document["coverage"]["by_region"]
        ]
        assert _column(table, "规划后覆盖") == expected
        assert _column(table, "区域") == [b["region"] for b in document["coverage"]["by_region"]]


def test_word_report_in_english(runs, tmp_path):
    folder = _folder(runs, tmp_path, "example", lang="en")
    document = _document(folder)
    word = _read(folder)
    text = _text(word)
    headings = [p.text for p in word.paragraphs if p.style.name.startswith("Heading")]
    assert "Sites to build, in priority order" in headings
    assert "Coverage before → after" in headings and "Data sources" in headings
    sections = [p.text for p in word.paragraphs if p.style.name == "Heading 1"]
    assert not [h for h in sections if any("\u4e00" <= ch <= "\u9fff" for ch in h)], sections
    assert "objective (weighted sum of covered elderly over types)" in text
    assert money(document["total_cost"], "万元", "en") in text
    assert money(document["budget"], "万元", "en") in text
    tables = _site_tables(word, "priority")
    for table, name in zip(tables, document["types"], strict=True):
        assert _column(table, "id") == _in_build_order(document, name)
        assert "cost (万元)" in [c.text for c in table.rows[0].cells]
    assert "care institution" in text


def test_numbers_right_aligned_header_styled(runs, tmp_path):
    word = _read(_folder(runs, tmp_path, "example"))
    table = _site_tables(word, "顺序")[0]
    assert table.style.name == TABLE_STYLE
    header = table.rows[0]
    assert header._tr.trPr.find(qn("w:tblHeader")) is not None  # repeats on each page
    headers = [c.text for c in header.cells]
    row = table.rows[1].cells
    assert row[headers.index("投资（万元）")].paragraphs[0].alignment == WD_ALIGN_PARAGRAPH.RIGHT
    assert row[headers.index("名称")].paragraphs[0].alignment is None
    cost = row[headers.index("投资（万元）")].text
    assert cost.replace(",", "").replace(".", "").isdigit() and "." in cost


def test_figures_embedded_at_page_width(runs, tmp_path):
    folder = _folder(runs, tmp_path, "example")
    word = _read(folder)
    assert len(word.inline_shapes) == 0
    assert "![" not in markdown_report(_document(folder), folder)
    Image.new("RGB", (1200, 850), "white").save(folder / "map.png")
    Image.new("RGB", (600, 400), "white").save(folder / "frontier.png")
    word = _read(folder)
    section = word.sections[0]
    width = section.page_width - section.left_margin - section.right_margin
    assert len(word.inline_shapes) == 2
    for shape in word.inline_shapes:
        assert abs(shape.width - width) < 2 * 9525  # within two pixels of the text width
    captions = [p.text for p in word.paragraphs if p.style.name == "Caption"]
    assert captions[0].startswith("图 1") and captions[1].startswith("图 2")
    text = markdown_report(_document(folder), folder)
    assert "](map.png)" in text and "](frontier.png)" in text


def _markdown_table(text: str, first: str) -> list[list[list[str]]]:
    """Markdown tables whose first header is ``first``: rows of cells (header dropped)."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith(f"| {first} |"):
            current = []
            tables.append(current)
        elif current is not None and line.startswith("|"):
            if not line.startswith("|---"):
                current.append([c.strip() for c in line.strip("|").split(" | ")])
        else:
            current = None
    return tables


def test_markdown_carries_the_same_numbers(runs, tmp_path):
    folder = _folder(runs, tmp_path, "ningbo")
    document = _document(folder)
    text = markdown_report(document, folder)
    word = _read(folder)
    sites = _markdown_table(text, "顺序")
    for rows, table, name in zip(sites, _site_tables(word, "顺序"), document["types"], strict=True):
        assert [r[1] for r in rows] == _in_build_order(document, name)
        assert rows == [[c.text for c in row.cells] for row in table.rows[1:]]
    (coverage,) = [t for t in _markdown_table(text, "设施类型") if len(t[0]) == 7]
    for row, c in zip(coverage, document["coverage"]["types"].values(), strict=True):
        assert row[2:4] == [f"{c['covered_before']:,.0f}", f"{c['covered_after']:,.0f}"]
    assert "101,694.6 万元（约 10.17 亿元）" in text
    assert text.startswith(f"# {document['title']}\n")


def test_checks_comparison_beds_and_network(runs, tmp_path):
    base = _document(runs["ningbo"])
    other = json.loads(json.dumps(base))
    other["scenario"] = "ningbo-other"
    other["selected"] = other["selected"][1:]
    beds = {
        "per_1000": 40.0,
        "nursing_share": 0.55,
        "need": 84040.0,
        "nursing_need": 46222.0,
        "beds_before": 69456.0,
        "beds_after": 76239.0,
        "beds_per_1000_before": 33.06,
        "beds_per_1000_after": 36.29,
        "served_before": 57689.7,
        "served_after": 64432.8,
        "unmet_after": 19607.2,
        "sites_without_region": 0,
        "by_region": [
            {
                "region": "余姚市",
                "elderly": 308237.0,
                "need": 12329.48,
                "beds_before": 9785.0,
                "beds_after": 10530.0,
                "beds_per_1000_before": 31.745,
                "beds_per_1000_after": 34.162,
                "served_before": 7648.5,
                "served_after": 8111.3,
            }
        ],
    }
    network = {
        "nodes": 34899,
        "edges": 46100,
        "components": 4,
        "largest_component_share": 0.9994,
        "max_snap_m": 500.0,
        "unreachable_demand": ["D00001"],
        "unreachable_sites": [],
    }
    folder = _folder(
        runs,
        tmp_path,
        "ningbo",
        comparison=compare_documents(other, base),
        beds=beds,
        network=network,
        plan_checks=base["plan_checks"] | {"idle_sites": {"institution": ["C0039"]}},
    )
    text = _text(_read(folder))
    markdown = markdown_report(_document(folder), folder)
    for shown in (text, markdown):
        assert "与方案 ningbo-other 比较" in shown
        assert "34.2" in shown and "84,040" in shown and "19,607" in shown  # beds
        assert "C0039" in shown and "max_count" in shown  # an idle site and the fix
        assert "241,396" in shown  # elderly no candidate reaches (institution)
        assert "D00001" in shown and "34,899" in shown  # the road network
    assert "`max_count`" in markdown
    assert "仅在 ningbo-other 中 0 处" in text


def test_min_distance_reports_the_mean_distance(runs, tmp_path):
    folder = _folder(runs, tmp_path, "example", objective_kind="min_distance", objective=2.0e6)
    document = _document(folder)
    text = markdown_report(document, folder)
    mean = 2.0e6 / document["coverage"]["demand_total"]
    assert f"加权平均距离为 {mean:,.0f} 米" in text
    assert "目标值（老年人数 × 到最近设施距离（米）之和）" in text


def test_user_text_cannot_add_markdown(runs, tmp_path):
    folder = _folder(runs, tmp_path, "example")
    document = _document(folder)
    document["title"] = "标题\n## injected <img src=x onerror=alert(1)>"
    document["selected"][0]["name"] = "## injected <img src=x onerror=alert(1)> | a"
    document["coverage"]["by_region"][0]["region"] = "- 列表 [a](b)"
    text = markdown_report(document, folder)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert not [line for line in text.splitlines() if line.startswith("## injected")]
    assert not [line for line in text.splitlines() if line.startswith("- 列表")]
    assert "\\[a\\](b)" in text
    rows = _markdown_table(text, "顺序")[0]
    assert all(len(r) == len(rows[0]) for r in rows)  # the | in the name splits no cell


def test_blocks_are_plain_values(runs, tmp_path):
    folder = _folder(runs, tmp_path, "example")
    blocks = report_blocks(_document(folder), folder)
    tables = [b for b in blocks if isinstance(b, Table)]
    assert tables and all(len(t.formats) == len(t.headers) for t in tables)
    assert all(len(row) == len(t.headers) for t in tables for row in t.rows)


def test_shipped_template_is_styled_and_current(tmp_path):
    word = docx.Document(str(template_path()))
    section = word.sections[0]
    assert (round(section.page_width.cm, 1), round(section.page_height.cm, 1)) == (21.0, 29.7)
    assert round(section.left_margin.cm, 1) == 2.5
    fonts = {
        name: word.styles[name].element.rPr.rFonts.get(qn("w:eastAsia"))
        for name in ("Normal", "Title", "Heading 1", "Heading 2")
    }
    assert fonts == {
        "Normal": "SimSun",
        "Title": "SimHei",
        "Heading 1": "SimHei",
        "Heading 2": "SimHei",
    }
    assert word.styles[TABLE_STYLE].element.find(qn("w:tblStylePr")).get(qn("w:type")) == (
        "firstRow"
    )
    assert not word.paragraphs and not word.tables
    # the shipped file is what build_template writes today
    rebuilt = build_template(tmp_path / "template.docx")
    with zipfile.ZipFile(template_path()) as a, zipfile.ZipFile(rebuilt) as b:
        for part in ("word/styles.xml", "word/document.xml", "word/footer1.xml"):
            assert a.read(part) == b.read(part), part


def test_another_template_and_bad_ones(runs, tmp_path):
    folder = _folder(runs, tmp_path, "example")
    plain = tmp_path / "plain.docx"
    docx.Document().save(str(plain))  # no Carecheck Table style: the header is bolded directly
    write_docx(folder, template=plain)
    word = docx.Document(str(folder / "report.docx"))
    header = _site_tables(word, "顺序")[0].rows[0].cells[0].paragraphs[0].runs[0]
    assert header.bold
    broken = tmp_path / "broken.docx"
    broken.write_text("not a zip", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.docx: not a Word template"):
        write_docx(folder, template=broken)


def test_bad_finished_folders(tmp_path):
    with pytest.raises(DataError, match=r"result\.json: not found"):
        write_docx(tmp_path)
    (tmp_path / "result.json").write_text(
        json.dumps({"scenario": "x", "types": {}, "selected": [{"type": "a"}], "coverage": {}}),
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"result\.json: not the content a report needs"):
        write_docx(tmp_path)
    assert not (tmp_path / "report.docx").exists()
