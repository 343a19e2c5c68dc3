"""map.html with no internet, by default: headless Chromium at 1000 × 700, network blocked.

The map of a plain ``carecheck run`` (no ``--offline``) must open with every request that is
not ``file:`` or ``data:`` aborted: Leaflet present, no JavaScript or console errors, one
marker per selected site, no selected site under a panel, panels that fold, online base maps
hidden at first and failing quietly, and a print layout with the map alone on one landscape
page. Skipped only when no Chromium is installed.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carecheck import maps

from ._browser import CHROMIUM_ARGS, find_chromium
from .test_map import NINGBO

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium installed (apt-get install chromium, or set CARECHECK_CHROMIUM)",
)

SMALL = {"width": 1000, "height": 700}
MAP = "Object.values(window).find(v => v instanceof L.Map)"
# Every selected-site marker that lies (partly) under a panel, or outside the map: the panels
# are all Leaflet controls (zoom, measure, layer control, summary, legend, scale bar,
# attribution) and the title.
HIDDEN_SITES = """() => {
    const box = e => e.getBoundingClientRect();
    const seen = e => { const r = box(e); return r.width > 0 && r.height > 0; };
    const panels = [...document.querySelectorAll('.leaflet-control, .cc-title')].filter(seen);
    const frame = box(document.querySelector('.leaflet-container'));
    const hidden = [];
    for (const marker of document.querySelectorAll('.cc-selected-site')) {
        const m = box(marker), id = marker.getAttribute('data-site-id');
        if (m.left < frame.left || m.top < frame.top || m.right > frame.right
            || m.bottom > frame.bottom) { hidden.push([id, 'outside the map']); continue; }
        for (const panel of panels) {
            const p = box(panel);
            if (m.left < p.right && p.left < m.right && m.top < p.bottom && p.top < m.bottom) {
                hidden.push([id, panel.className.split(' ').slice(0, 2).join(' ')]);
            }
        }
    }
    return hidden;
}"""


def _run(scenario: Path, out: Path) -> Path:
    from carecheck.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["run", str(scenario), "--out", str(out)])  # the default map: no --offline
    assert stop.value.code == 0
    return out


@pytest.fixture(scope="module")
def ningbo(tmp_path_factory) -> tuple[Path, dict]:
    folder = _run(NINGBO, tmp_path_factory.mktemp("offline") / "宁波 输出")
    return folder, json.loads((folder / "result.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class Page:
    """A page opened with the network blocked, and what it logged."""

    def __init__(self, browser: Any, path: Path, viewport: dict = SMALL) -> None:
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        self.page.wait_for_selector(".cc-selected-site", state="attached")

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def small(browser, ningbo) -> Iterator[Page]:
    page = Page(browser, ningbo[0] / "map.html")
    yield page
    page.close()


def test_default_map_needs_no_network(ningbo, small):
    folder, document = ningbo
    text = (folder / "map.html").read_text(encoding="utf-8")
    assert "<script src=" not in text and '<link rel="stylesheet" href=' not in text
    assert small.errors == []
    assert small.blocked == []
    assert small.page.evaluate("typeof window.L === 'object' && typeof L.map === 'function'")
    markers = small.page.locator(".cc-selected-site")
    assert markers.count() == len(document["selected"]) > 0
    shown = set(markers.evaluate_all("els => els.map(e => e.getAttribute('data-site-id'))"))
    assert shown == {s["id"] for s in document["selected"]}
    assert small.page.locator(".cc-existing-site").count() == len(document["existing"])


def test_no_selected_site_under_a_panel_at_1000_by_700(small):
    assert small.page.viewport_size == SMALL
    assert small.page.evaluate(HIDDEN_SITES) == []
    # the check can fail: a site moved under the summary box is found
    moved = small.page.evaluate(
        f"""() => {{
        const map = {MAP}, marker = document.querySelector('.cc-selected-site');
        const m = marker.getBoundingClientRect();
        const p = document.querySelector('.cc-summary').getBoundingClientRect();
        const dx = m.x + m.width / 2 - (p.x + p.width / 2);
        const dy = m.y + m.height / 2 - (p.y + p.height / 2);
        map.panBy([dx, dy], {{animate: false}});
        return marker.getAttribute('data-site-id');
    }}"""
    )
    assert [moved, "cc-box cc-summary"] in small.page.evaluate(HIDDEN_SITES)
    small.page.evaluate(
        f"() => {MAP}.setView(carecheck.fitted.center, carecheck.fitted.zoom, {{animate: false}})"
    )
    assert small.page.evaluate(HIDDEN_SITES) == []


def test_panels_fold_by_their_title(small):
    page = small.page
    # a small window starts with the layer control folded up: its list hidden
    layers = page.locator(".leaflet-control-layers")
    assert page.locator(".leaflet-control-layers-list").is_hidden()
    page.locator(".cc-layers-title").click()
    assert page.locator(".leaflet-control-layers-list").is_visible()
    assert page.locator(".cc-layers-title").get_attribute("aria-expanded") == "true"
    page.locator(".cc-layers-title").click()
    assert page.locator(".leaflet-control-layers-list").is_hidden()
    assert "cc-collapsed" in (layers.get_attribute("class") or "")
    for panel, inside in ((".cc-summary", ".cc-coverage"), (".cc-legend", ".cc-legend-type")):
        title = page.locator(f"{panel} .cc-box-title")
        assert page.locator(f"{panel} {inside}").first.is_visible()
        before = page.locator(panel).bounding_box()
        title.click()
        assert page.locator(f"{panel} {inside}").first.is_hidden()
        assert title.get_attribute("aria-expanded") == "false"
        folded = page.locator(panel).bounding_box()
        assert folded["height"] < before["height"] / 3
        title.press("Enter")  # by keyboard, too
        assert page.locator(f"{panel} {inside}").first.is_visible()
    assert small.errors == []


def test_online_base_maps_are_hidden_and_fail_quietly(small):
    page = small.page
    base = [t.strip() for t in page.locator(".leaflet-control-layers-base label").all_inner_texts()]
    assert base == ["无底图（仅矢量）", "浅色底图（需联网）", "OpenStreetMap（需联网）"]
    checked = page.locator(".leaflet-control-layers-base input:checked + span").inner_text()
    assert checked.strip() == "无底图（仅矢量）"
    assert page.locator(".leaflet-tile").count() == 0
    page.locator(".cc-layers-title").click()
    try:
        page.locator(".leaflet-control-layers-base label", has_text="OpenStreetMap").click()
        page.wait_for_selector(".cc-tile-note")
        page.wait_for_function(
            "[...document.querySelectorAll('img.leaflet-tile')].every(i => i.complete)"
        )
        assert small.blocked and all("tile.openstreetmap.org" in u for u in small.blocked)
        assert "未联网" in page.locator(".cc-tile-note").inner_text()
        # no broken image: each failed tile became a loaded transparent pixel
        broken = page.evaluate(
            "[...document.querySelectorAll('img.leaflet-tile')]"
            ".filter(i => !i.src.startsWith('data:') || i.naturalWidth === 0).length"
        )
        assert broken == 0
        # the only errors are the browser's own lines for the refused requests
        assert [e for e in small.errors if not e.startswith("Failed to load resource")] == []
        page.locator(".leaflet-control-layers-base label", has_text="无底图").click()
        assert page.locator(".cc-tile-note").count() == 0
    finally:
        small.errors.clear()
        small.blocked.clear()
        page.locator(".cc-layers-title").click()


def test_print_puts_the_map_alone_on_a_landscape_page(small, tmp_path):
    page = small.page
    view = f"() => {{ const m = {MAP}, c = m.getCenter(); return [c.lat, c.lng, m.getZoom()]; }}"
    before = page.evaluate(view)
    page.emulate_media(media="print")
    try:
        page.wait_for_function("document.querySelector('.folium-map.cc-printing') !== null")
        assert page.locator(".leaflet-control-layers").is_hidden()
        assert page.locator(".cc-summary").is_hidden()
        assert page.locator(".leaflet-control-zoom").is_hidden()
        assert page.locator(".cc-title").is_visible() and page.locator(".cc-legend").is_visible()
        assert page.evaluate(HIDDEN_SITES) == []
    finally:
        page.emulate_media(media="screen")
    page.wait_for_function("document.querySelector('.folium-map.cc-printing') === null")
    assert page.locator(".leaflet-control-layers").is_visible()
    assert page.evaluate(view) == pytest.approx(before, abs=1e-6)
    # a real print: one page, landscape, in the paper of outputs.paper (A3 by default)
    pdf = tmp_path / "map.pdf"
    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    from pypdf import PdfReader

    pages = PdfReader(pdf).pages
    assert len(pages) == 1
    width, height = float(pages[0].mediabox.width), float(pages[0].mediabox.height)
    assert (width, height) == pytest.approx((420 / 25.4 * 72, 297 / 25.4 * 72), abs=2)
    assert page.evaluate(view) == pytest.approx(before, abs=1e-6)
    assert small.errors == []


def test_summary_reports_coverage_per_type_and_money_with_its_unit(ningbo, browser, tmp_path):
    folder = tmp_path / "万元"
    shutil.copytree(ningbo[0], folder)
    document = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    document["cost_unit"] = "万元"
    (folder / "result.json").write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    regions = None
    for lang, total in (("zh", "总投资: 101,694.6 万元（约 10.17 亿元）"), ("en", "Total cost: ")):
        maps.write_map(folder, regions=regions, lang=lang)
        page = Page(browser, folder / "map.html")
        try:
            summary = page.page.locator(".cc-summary")
            text = summary.text_content()  # folded or not
            cost = document["total_cost"]
            assert f"{cost:,.1f} 万元" in text
            if lang == "zh":
                assert total in text
            else:
                assert f"{total}{cost:,.1f} 万元 (about {cost / 1e4:,.2f} 亿元)" in text
            # one coverage row per type, and no sum over types called elderly covered
            rows = summary.locator(".cc-coverage tr")
            assert rows.count() == len(document["types"])
            objective = f"{document['objective']:,.0f}"
            assert objective not in text
            summed = sum(c["covered_after"] for c in document["coverage"]["types"].values())
            assert f"{summed:,.0f}" not in text
            popup_cost = document["selected"][0]["cost"]
            site = document["selected"][0]["id"]
            page.page.locator(f'.cc-selected-site[data-site-id="{site}"]').click()
            popup = page.page.locator(".leaflet-popup-content .cc-site-popup").inner_text()
            assert f"{popup_cost:,.1f} 万元" in popup
            assert page.errors == [] and page.blocked == []
        finally:
            page.close()


@pytest.mark.parametrize(
    ("viewport", "lang"),
    [({"width": 1400, "height": 900}, "en"), ({"width": 800, "height": 600}, "zh")],
)
def test_other_window_sizes(ningbo, browser, tmp_path, viewport, lang):
    folder = tmp_path / "out"
    shutil.copytree(ningbo[0], folder)
    maps.write_map(folder, regions=None, lang=lang)
    page = Page(browser, folder / "map.html", viewport)
    try:
        assert page.errors == [] and page.blocked == []
        assert page.page.evaluate(HIDDEN_SITES) == []
        expanded = page.page.locator(".leaflet-control-layers-list").is_visible()
        assert expanded == (viewport["width"] >= 1280 and viewport["height"] >= 800)
    finally:
        page.close()


def test_offline_argument_changes_nothing(ningbo):
    def page(**kwargs: bool) -> str:  # without folium's random element ids
        return re.sub(r"_[0-9a-f]{32}", "", maps.html_from_outputs(ningbo[0], **kwargs))

    assert page(offline=True) == page(offline=False) == page()
