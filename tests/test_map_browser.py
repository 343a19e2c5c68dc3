"""The map in a real browser: headless Chromium opens map.html with the network blocked.

Skipped only when no Chromium is installed (CI installs Debian's ``chromium``).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from carecheck import maps

from ._browser import chromium_context, find_chromium, open_page
from .test_map import (
    EXAMPLE,
    HOSTILE,
    HOSTILE_REGION,
    NINGBO,
    hostile_copy,
    run_outputs,
    synthetic_outputs,
)

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium installed (apt-get install chromium, or set CARECHECK_CHROMIUM)",
)

MAP = "Object.values(window).find(v => v instanceof L.Map)"
DEMAND_LAYER = f"""(() => {{
    let found = null;
    {MAP}.eachLayer(l => {{ if (l.lastDrawMs !== undefined && !found) found = l; }});
    return found;
}})()"""


def close_popup(page) -> None:
    page.evaluate(f"() => {{ {MAP}.closePopup(); }}")
    page.wait_for_function("document.querySelectorAll('.leaflet-popup').length === 0", polling=50)


@pytest.fixture(scope="module")
def context():
    with chromium_context() as context:
        yield context


@pytest.fixture(scope="module")
def ningbo(tmp_path_factory):
    folder, regions = run_outputs(NINGBO, tmp_path_factory.mktemp("ningbo") / "out")
    maps.write_map(folder, regions=regions)
    return folder, regions, json.loads((folder / "result.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ningbo_page(context, ningbo, tmp_path_factory):
    folder, _, _ = ningbo
    page, log = open_page(context, folder / "map.html", ready=".cc-selected-site")
    page.screenshot(path=str(tmp_path_factory.mktemp("shots") / "ningbo.png"))
    print(f"Ningbo map: loaded in {log.load_s:.2f} s")
    yield page, log
    page.close()


def test_map_loads_without_network_or_errors(ningbo_page, ningbo):
    page, log = ningbo_page
    document = ningbo[2]
    assert log.errors == []
    assert log.blocked == []
    assert log.dialogs == []
    assert page.locator(".cc-selected-site").count() == len(document["selected"])
    assert page.locator(".cc-existing-site").count() == len(document["existing"])
    drawn = page.evaluate(f"{DEMAND_LAYER}._drawn")
    assert 0 < drawn <= document["model_size"]["demand_units"]
    assert page.locator(".leaflet-control-scale").count() == 1
    assert page.locator(".leaflet-control-zoom-fullscreen").count() == 1
    assert page.locator(".leaflet-control-measure").count() == 1


def test_layer_control(ningbo_page, ningbo):
    page, _ = ningbo_page
    document = ningbo[2]
    base = [t.strip() for t in page.locator(".leaflet-control-layers-base label").all_inner_texts()]
    assert base == ["无底图（仅矢量）", "浅色底图（需联网）", "OpenStreetMap（需联网）"]
    checked = page.locator(".leaflet-control-layers-base input:checked + span").inner_text()
    assert checked.strip() == "无底图（仅矢量）"
    overlays = [
        t.strip() for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    ]
    assert overlays == [
        "区域覆盖率：养老机构",
        "区域覆盖率：社区嵌入式养老机构",
        "区域名称",
        "老年人口点（按养老机构覆盖着色）",
        "老年人口点（按社区嵌入式养老机构覆盖着色）",
        "服务半径：养老机构",
        "服务半径：社区嵌入式养老机构",
        f"现有设施 ({len(document['existing'])})",
        f"新选址 ({len(document['selected'])})",
    ]
    # switching a reach layer on draws one circle per site of that type
    page.locator(".leaflet-control-layers-overlays label", has_text="服务半径：养老机构").click()
    circles = page.locator(".leaflet-ccReach-pane path").count()
    expected = sum(
        1 for s in document["selected"] + document["existing"] if s["type"] == "institution"
    )
    page.locator(".leaflet-control-layers-overlays label", has_text="服务半径：养老机构").click()
    assert circles == expected


def test_summary_numbers_equal_result(ningbo_page, ningbo):
    page, _ = ningbo_page
    document = ningbo[2]
    summary = page.locator(".cc-summary")
    coverage = document["coverage"]
    assert float(summary.locator(".cc-total").get_attribute("data-value")) == pytest.approx(
        coverage["demand_total"]
    )
    assert summary.locator(".cc-total").inner_text() == f"{coverage['demand_total']:,.0f}"
    for name, c in coverage["types"].items():
        row = summary.locator(f'.cc-coverage tr[data-type="{name}"]')
        for key, cls in (("covered_before", ".cc-before"), ("covered_after", ".cc-after")):
            cell = row.locator(cls)
            assert float(cell.get_attribute("data-value")) == pytest.approx(c[key])
            assert f"{c[key]:,.0f}" in cell.inner_text()
        sites = summary.locator(f'.cc-site-counts tr[data-type="{name}"] .cc-sites')
        assert int(sites.get_attribute("data-value")) == document["types"][name]["count_opened"]
    assert summary.locator(".cc-status").get_attribute("data-value") == document["status"]
    gap = summary.locator(".cc-gap")
    assert float(gap.get_attribute("data-value")) == pytest.approx(document["gap"])
    assert gap.inner_text() == f"{document['gap']:.2%}"


def test_site_popup_opens_with_the_right_site(ningbo_page, ningbo):
    page, _ = ningbo_page
    site = ningbo[2]["selected"][0]
    page.locator(f'.cc-selected-site[data-site-id="{site["id"]}"]').click()
    popup = page.locator(".leaflet-popup-content .cc-site-popup")
    popup.wait_for()
    assert popup.get_attribute("data-site-id") == site["id"]
    text = popup.inner_text()
    assert site["name"] in text and site["id"] in text
    assert f"{site['new_covered_weight']:,.0f}" in text
    close_popup(page)


def test_new_sites_carry_their_build_order_label(ningbo_page, ningbo):
    """Each new site's marker shows the label the printable map and the tables use."""
    from carecheck.labels import site_labels

    page, _ = ningbo_page
    document = ningbo[2]
    expected = {sid: label for (_, sid), label in site_labels(document).items()}
    shown = page.evaluate(
        "() => Array.from(document.querySelectorAll('.cc-selected-site')).map("
        "e => [e.getAttribute('data-site-id'), e.querySelector('text').textContent])"
    )
    assert dict(shown) == expected
    assert sorted(expected.values())[:2] == ["A1", "A10"]  # two types: letter and priority
    first = next(s for s in document["selected"] if expected[s["id"]] == "B1")
    assert first["type"] == "embedded" and first["priority"] == 1


def test_demand_point_popup(ningbo_page):
    page, _ = ningbo_page
    # a drawn point at least 25 px away from every site marker, in the middle of the screen
    point = page.evaluate(
        f"""(() => {{
        const layer = {DEMAND_LAYER}, map = {MAP}, size = map.getSize();
        const markers = [...document.querySelectorAll('.cc-site')].map(e => {{
            const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];
        }});
        for (let k = layer._drawn - 1; k >= 0; k--) {{
            const x = layer._hx[k], y = layer._hy[k];
            if (x < 300 || x > size.x - 400 || y < 120 || y > size.y - 250) continue;
            if (markers.every(([mx, my]) => Math.hypot(mx - x, my - y) > 25)) return [x, y];
        }}
        return null;
    }})()"""
    )
    assert point is not None
    box = page.locator(".leaflet-container").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    popup = page.locator(".leaflet-popup-content .cc-demand-popup")
    popup.wait_for()
    assert "老年人数" in popup.inner_text()
    close_popup(page)


def test_region_popup(ningbo_page, ningbo):
    page, _ = ningbo_page
    block = ningbo[2]["coverage"]["by_region"][0]
    page.evaluate(
        f"""(() => {{
        let done = false;
        {MAP}.eachLayer(l => {{
            if (!done && l.feature && l.getPopup && l.getPopup()
                && l.getPopup().getContent().includes({json.dumps(block["region"])})) {{
                l.openPopup(); done = true;
            }}
        }});
    }})()"""
    )
    popup = page.locator(".leaflet-popup-content .cc-region-popup")
    popup.wait_for()
    text = popup.inner_text()
    assert block["region"] in text and f"{block['demand_total']:,.0f}" in text
    close_popup(page)


def test_hostile_names_show_as_text(context, tmp_path):
    folder, regions = run_outputs(EXAMPLE, tmp_path / "example")
    folder, regions = hostile_copy(folder, regions, tmp_path / "hostile")
    maps.write_map(folder, regions=regions)
    page, log = open_page(context, folder / "map.html", ready=".cc-selected-site")
    try:
        page.locator(".cc-selected-site").first.click()
        popup = page.locator(".leaflet-popup-content .cc-site-popup")
        popup.wait_for()
        assert popup.locator(".cc-popup-title").inner_text() == HOSTILE
        assert popup.locator("img").count() == 0
        assert page.locator(".cc-title-text").inner_text() == "<script>alert(4)</script>规划"
        labels = page.locator(".cc-region-label").all_inner_texts()
        assert HOSTILE_REGION in labels
        page.screenshot(path=str(tmp_path / "hostile.png"))
        page.wait_for_timeout(200)  # room for an injected handler to fire
        assert log.dialogs == []
        assert log.errors == []
        assert log.blocked == []
        assert not [u for u in log.requests if u.endswith("/x")], "an injected <img> loaded"
    finally:
        page.close()


@pytest.mark.slow
def test_100000_points_stay_smooth(context, ningbo, tmp_path):
    folder = synthetic_outputs(ningbo[0], tmp_path / "big", 100_000)
    maps.write_map(folder, regions=ningbo[1])
    page, log = open_page(context, folder / "map.html", ready=".cc-selected-site")
    try:
        times = page.evaluate(
            f"""(() => {{
            const map = {MAP}, layer = {DEMAND_LAYER}, times = [layer.lastDrawMs];
            map.setZoom(map.getZoom() + 1, {{animate: false}});
            for (let k = 0; k < 8; k++) {{
                map.panBy([k % 2 ? 120 : -120, 0], {{animate: false}});
                times.push(layer.lastDrawMs);
            }}
            return times;
        }})()"""
        )
        print(
            f"100,000 points: load {log.load_s:.2f} s, first draw {times[0]:.0f} ms, "
            f"redraw median {statistics.median(times[1:]):.0f} ms"
        )
        assert log.errors == [] and log.blocked == []
        assert log.load_s < 30
        assert statistics.median(times[1:]) < 500
    finally:
        page.close()


def test_screenshot_is_written(ningbo_page, tmp_path: Path):
    page, _ = ningbo_page
    path = tmp_path / "map.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000


def test_chinese_type_and_scenario_names_end_to_end(context, tmp_path):
    from carecheck.cli import main

    text = EXAMPLE.read_text(encoding="utf-8")
    text = (
        text.replace("name: example", "name: 示例-中文")
        .replace("\n  institution:", "\n  养老院:")
        .replace("\n  embedded:", "\n  嵌入式:")
        .replace("region_min_sites: {institution: 1}", "region_min_sites: {养老院: 1}")
        .replace("../geodata/example/", str(EXAMPLE.parents[1] / "geodata" / "example") + "/")
    )
    scenario = tmp_path / "场景 A.yaml"
    scenario.write_text(text, encoding="utf-8")
    out = tmp_path / "输出 目录" / "示例-中文"
    for command in (["run", str(scenario), "--out", str(out)], ["verify", str(out)]):
        with pytest.raises(SystemExit) as info:
            main(command)
        assert info.value.code == 0
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert document["scenario"] == "示例-中文"
    assert {s["type"] for s in document["selected"]} == {"养老院", "嵌入式"}
    with (out / "demand_coverage.csv").open(encoding="utf-8-sig") as f:
        header = f.readline().strip().split(",")
    assert "covered_after_养老院" in header and "nearest_嵌入式_id" in header
    page, log = open_page(context, out / "map.html", ready=".cc-selected-site")
    try:
        assert log.errors == []
        assert page.locator(".cc-selected-site").count() == len(document["selected"])
        overlays = " ".join(
            page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        )
        assert "养老院" in overlays and "嵌入式" in overlays
    finally:
        page.close()
