"""The printable static map of a finished run, ``map.png`` and ``map.pdf`` (matplotlib, no tiles).

One landscape sheet (``outputs.paper`` A3 by default, or A4) drawn from the files a run leaves
in its folder, so ``carecheck map OUTDIR`` can redraw it:

- the title, and a line saying what the plan opens and what it costs;
- the regions (layer ``regions`` of ``plan.gpkg``, when the folder has one) shaded by the share
  of their elderly that the **first facility type** of ``result.json`` covers after the plan
  (the type the interactive map shades first; the legend names it), with their names;
- every demand point of ``demand_coverage.csv``, its area proportional to its weight, coloured
  by its coverage by that same type (not covered, covered before, newly covered);
- existing facilities (hollow) and new sites (filled), one marker shape and colour per type,
  each new site numbered by its ``priority`` (1 = build first). With one facility type the
  number is the label; with several, a letter names the type in the order of ``result.json``
  (``A3`` = the third site of the first type), as :func:`site_labels` gives for tables;
- a legend, the plan summary per type, the build-order key (label → site name), a north arrow
  pointing to true north, a scale bar and the map's scale as printed, and a source line (data
  files, CRS, carecheck version, date).

The map is drawn in a metric CRS — the run's working ``crs``, or the UTM zone of the data when
that is not a projected CRS in metres — at a round scale (1:250,000, 1:300,000 …) chosen so
the data fill the frame, so the scale bar and the printed scale are right.

Chinese text needs a CJK font: :func:`cjk_font` finds one installed on the system (Microsoft
YaHei or SimHei on Windows, PingFang or Hiragino Sans GB on macOS, Noto Sans CJK from
fonts-noto-cjk on Debian, …). With ``lang: zh`` and no such font the sheet is drawn in English
and :func:`font_note` says so (:func:`write_print_map` logs it as a warning). A text the chosen
fonts cannot draw (a Chinese place name without a CJK font) is left out, or replaced by a
neutral name ("type 2"), never drawn as boxes.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from carecheck import __version__
from carecheck.errors import DataError
from carecheck.labels import LABELS, site_labels
from carecheck.outdir import read_result
from carecheck.units import money

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from pyproj import CRS

log = logging.getLogger(__name__)

PNG_FILE = "map.png"
PDF_FILE = "map.pdf"
GPKG_FILE = "plan.gpkg"
# Paper sizes, landscape, in millimetres (ISO 216).
PAPERS: dict[str, tuple[float, float]] = {"A3": (420.0, 297.0), "A4": (297.0, 210.0)}
DEFAULT_PAPER = "A3"
PNG_DPI = 200  # print resolution: A3 = 3307 × 2338 pixels, about 1.5 MB for ningbo-2026
# Above this many demand points, the points are a raster layer inside the PDF (at PNG_DPI):
# 100,000 vector markers make a PDF that is slow to open and print.
RASTER_POINTS = 10_000
# An enlargement (inset) is drawn where at least this many new sites fall within a quarter of
# the map's width (their labels crowd), when the panel has room for it.
INSET_SITES = 5
MM = 1 / 25.4  # inches per millimetre
PT_MM = 25.4 / 72  # millimetres per typographic point

# Installed CJK families, the most legible for Simplified Chinese first. Matplotlib knows a
# family by the name inside the font file; file-name hints find fonts installed after
# matplotlib built its font cache (e.g. fonts-noto-cjk added later).
CJK_FAMILIES = (
    "Microsoft YaHei",
    "PingFang SC",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "Hiragino Sans GB",
    "SimHei",
    "Heiti SC",
    "STHeiti",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "Arial Unicode MS",
    "Noto Sans CJK JP",  # matplotlib < 3.10 reads only the first face of NotoSansCJK.ttc
)
_CJK_FILE_HINTS = (
    "msyh",
    "simhei",
    "pingfang",
    "notosanscjk",
    "notosanssc",
    "sourcehansans",
    "hiragino sans gb",
    "stheiti",
    "wqy",
    "droidsansfallback",
    "arial unicode",
)
LATIN_FAMILY = "DejaVu Sans"  # ships with matplotlib: always there

# Chinese money units in words, for a sheet drawn without a CJK font.
LATIN_UNITS = {
    "亿元": "×10⁸ yuan",
    "百万元": "×10⁶ yuan",
    "万元": "×10⁴ yuan",
    "千元": "×10³ yuan",
    "元": "yuan",
}
# Round map scales: the denominator is one of these times a power of ten.
NICE_SCALES = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 8.0)
REGION_ALPHA = 0.6  # region shading, so the demand points on top stay visible
KEY_SIZE = 7.2  # points, the build-order key
# Matplotlib marker per shape name of carecheck.palette.TYPE_SHAPES.
MARKERS = {"square": "s", "circle": "o", "diamond": "D", "triangle": "^", "hexagon": "h"}
MARKERS["star"] = "*"

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "untitled": "设施布局规划",
        "plan_line": "新开 {sites}",
        "sites_of": "{type} {n} 处",
        "total_cost": "总投资 {money}",
        "shade_type": "区域覆盖率（规划后）：{type}",
        "size": "点面积 ∝ 老年人数",
        "people": "{n} 人",
        "new_site": "新选址（编号 = 建设顺序）",
        "existing_site": "现有设施",
        "label_rule_one": "编号：1 = 最先建设",
        "label_rule_many": "编号：字母 = 设施类型，数字 = 该类型内建设顺序（1 = 最先）",
        "summary": "规划摘要",
        "coverage_line": "{type}：新开 {n} 处，覆盖率 {before} → {after}",
        "solver_line": "求解：{status}，相对间隙 {gap}",
        "key": "建设顺序",
        "inset": "放大图（1:{scale}，主图虚线框）",
        "more": "…… 另 {n} 处，见 plan.xlsx",
        "north": "北",
        "km": "公里",
        "m": "米",
        "scale": "比例尺 1:{scale}（{paper} 打印）",
        "sources": "数据：{files}",
        "crs": "坐标系：{crs}",
        "made": "carecheck {version} 制图，{date}",
        "sep": "；",
        "colon": "：",
        "type_n": "类型 {n}",
    },
    "en": {
        "untitled": "Facility plan",
        "plan_line": "New sites: {sites}",
        "sites_of": "{type} {n}",
        "total_cost": "total cost {money}",
        "shade_type": "Covered share by region (after): {type}",
        "size": "point area ∝ number of elderly",
        "people": "{n}",
        "new_site": "New site (number = build order)",
        "existing_site": "Existing facility",
        "label_rule_one": "Numbers: 1 = build first",
        "label_rule_many": "Letter = facility type, number = build order within it (1 = first)",
        "summary": "Plan summary",
        "coverage_line": "{type}: {n} new, covered {before} → {after}",
        "solver_line": "Solver: {status}, gap {gap}",
        "key": "Build order",
        "inset": "Inset (1:{scale}, dashed box on the map)",
        "more": "… {n} more, see plan.xlsx",
        "north": "N",
        "km": "km",
        "m": "m",
        "scale": "Scale 1:{scale} (printed on {paper})",
        "sources": "Data: {files}",
        "crs": "CRS: {crs}",
        "made": "Map by carecheck {version}, {date}",
        "sep": "; ",
        "colon": ": ",
        "type_n": "type {n}",
    },
}


# --------------------------------------------------------------------------- fonts


@cache
def cjk_font() -> str | None:
    """The family name of an installed font that draws Chinese, or None.

    Looks through matplotlib's font manager for the families of :data:`CJK_FAMILIES`, in
    order; when none is known there, adds the system's font files whose names look like a
    CJK font (a font installed after matplotlib built its cache) and looks again.
    """
    from matplotlib import font_manager

    def known() -> str | None:
        names = {entry.name for entry in font_manager.fontManager.ttflist}
        return next((family for family in CJK_FAMILIES if family in names), None)

    found = known()
    if found is not None:
        return found
    for path in font_manager.findSystemFonts():
        if any(hint in Path(path).name.lower() for hint in _CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # an unreadable font file
                continue
    return known()


# What the planner is told when the map should be Chinese and cannot be (in both languages:
# it is shown in the terminal, which can show Chinese even where matplotlib has no font).
NO_FONT_NOTE = (
    "map.png/map.pdf：未找到中文字体，打印地图改用英文，中文名称从略。请安装中文字体"
    "（Windows：微软雅黑；Debian/Ubuntu：apt install fonts-noto-cjk；macOS：苹方）后运行 "
    "`carecheck map OUTDIR` 重新绘制。 / map.png/map.pdf: no Chinese (CJK) font found, so the "
    "printable map is in English and Chinese names are left out. Install one (Windows: "
    "Microsoft YaHei; Debian/Ubuntu: apt install fonts-noto-cjk; macOS: PingFang) and draw it "
    "again with `carecheck map OUTDIR`."
)


def font_note(lang: str) -> str | None:
    """What to tell the planner when ``lang`` asks for Chinese and no CJK font is installed."""
    if lang == "zh" and cjk_font() is None:
        return NO_FONT_NOTE
    return None


@cache
def _glyphs(families: tuple[str, ...]) -> frozenset[int]:
    """The code points that the fonts of ``families`` draw between them."""
    from matplotlib import font_manager

    points: set[int] = set()
    for family in families:
        props = font_manager.FontProperties(family=family)
        path = font_manager.findfont(props, fallback_to_default=False)
        points.update(font_manager.get_font(path).get_charmap())
    return frozenset(points)


# --------------------------------------------------------------------------- the sheet's text


@dataclass(frozen=True)
class _Style:
    """The language, fonts and paper of one sheet, and how its text is made drawable."""

    lang: str
    families: tuple[str, ...]
    paper: str
    size_mm: tuple[float, float]

    @property
    def text(self) -> dict[str, str]:
        return TEXT[self.lang]

    @property
    def ui(self) -> dict[str, str]:
        return LABELS[self.lang]["ui"]

    @property
    def k(self) -> float:
        """Size of text, symbols and margins: 1 on A3; on A4 0.84 (√ of the paper's ratio, so
        text stays readable on the smaller sheet)."""
        return math.sqrt(self.size_mm[0] / PAPERS["A3"][0])

    def drawable(self, text: object) -> bool:
        glyphs = _glyphs(self.families)
        return all(ch.isspace() or ord(ch) in glyphs for ch in str(text))

    def shown(self, text: object, default: str = "") -> str:
        """``text`` if the sheet's fonts draw it, else ``default`` (also for a blank)."""
        if _blank(text):
            return default
        return str(text) if self.drawable(text) else default

    def value(self, kind: str, raw: object, default: str = "") -> str:
        """A data value's display name (type, tier, action, status), or ``default``."""
        if _blank(raw):
            return default
        return self.shown(LABELS[self.lang][kind].get(str(raw), raw), default)

    def type_name(self, types: list[str], t: str) -> str:
        return self.value("type", t, self.text["type_n"].format(n=types.index(t) + 1))


def _blank(value: object) -> bool:
    """None, '' or NaN (a key a site does not have, in a frame of sites)."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _style(document: dict, path: Path) -> _Style:
    lang = document.get("lang") or "zh"
    if lang not in TEXT:
        raise DataError(f"{path}: lang must be one of {sorted(TEXT)}, not {lang!r}")
    font = cjk_font()
    if lang == "zh" and font is None:
        lang = "en"
    paper = (document.get("outputs") or {}).get("paper") or DEFAULT_PAPER
    if paper not in PAPERS:
        raise DataError(f"{path}: outputs.paper must be one of {sorted(PAPERS)}, not {paper!r}")
    families = (font, LATIN_FAMILY) if font else (LATIN_FAMILY,)
    return _Style(lang=lang, families=families, paper=paper, size_mm=PAPERS[paper])


def text_width_mm(text: str, size_pt: float) -> float:
    """About how wide ``text`` is at ``size_pt`` (mm): a wide (CJK) character 1 em, others ½."""
    ems = sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.56 for ch in text)
    return ems * size_pt * PT_MM


def wrapped(text: str, size_pt: float, width_mm: float) -> list[str]:
    """``text`` in lines no wider than ``width_mm`` (about): broken at a space where one is
    near, else between any two characters (as Chinese is)."""
    lines: list[str] = []
    rest = text
    while rest and text_width_mm(rest, size_pt) > width_mm:
        cut = 1
        while cut < len(rest) and text_width_mm(rest[: cut + 1], size_pt) <= width_mm:
            cut += 1
        space = rest.rfind(" ", 0, cut + 1)
        if space > cut * 0.6:
            cut = space
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*lines, rest] if rest or not lines else lines


def _money(value: float, unit: str | None, style: _Style) -> str:
    """The amount with its unit (:func:`carecheck.units.money`); without a CJK font, Chinese
    money units in words, or the bare amount if the unit still cannot be drawn."""
    text = money(value, unit, style.lang)
    if not style.drawable(text):
        for chinese, words in sorted(LATIN_UNITS.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(chinese, words)
    return text if style.drawable(text) else f"{value:,.1f}"


def _share(part: float, total: float) -> str:
    return f"{part / total:.1%}" if total else "–"


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class _Data:
    """What the sheet draws, in the drawing CRS (metres)."""

    document: dict
    types: list[str]
    shade: str  # the facility type whose coverage shades regions and colours demand points
    crs: CRS
    demand: pd.DataFrame  # x, y, weight, status (0 not covered, 1 before, 2 newly covered)
    selected: pd.DataFrame  # x, y, label and the selected[*] keys, in build order per type
    existing: pd.DataFrame  # x, y and the existing[*] keys
    regions: gpd.GeoDataFrame | None  # region, share, geometry


def read_regions(folder: Path) -> gpd.GeoDataFrame | None:
    """Layer ``regions`` of ``folder / plan.gpkg`` (columns region, geometry), or None."""
    import geopandas as gpd
    import pyogrio

    path = folder / GPKG_FILE
    if not path.is_file():
        return None
    try:
        if "regions" not in {str(name) for name, _ in pyogrio.list_layers(path)}:
            return None
        frame = gpd.read_file(path, layer="regions", engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise DataError(f"{path}: not a readable GeoPackage ({exc})") from None
    if "region" not in frame.columns:
        raise DataError(f"{path}: layer regions has no `region` column ({list(frame.columns)})")
    if frame.crs is None:
        raise DataError(f"{path}: layer regions has no coordinate reference system")
    return frame[["region", "geometry"]]


def drawing_crs(document: dict, lon: np.ndarray, lat: np.ndarray) -> CRS:
    """The run's working CRS when it is projected in metres, else the data's UTM zone."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(document["crs"]) if document.get("crs") else None
    except CRSError:
        crs = None
    if crs is not None and crs.is_projected:
        unit = crs.axis_info[0].unit_name if crs.axis_info else ""
        if unit in ("metre", "meter"):
            return crs
    lon0 = float(np.nanmedian(lon)) if len(lon) else 0.0
    lat0 = float(np.nanmedian(lat)) if len(lat) else 0.0
    zone = min(int((lon0 + 180) // 6) + 1, 60)
    return CRS.from_epsg((32600 if lat0 >= 0 else 32700) + zone)


def _demand(folder: Path, shade: str) -> pd.DataFrame:
    import pandas as pd

    from carecheck.textsafe import read_demand

    raw = read_demand(folder)
    path = folder / "demand_coverage.csv"
    columns = [f"covered_before_{shade}", f"covered_after_{shade}"]
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    numbers = {c: pd.to_numeric(raw[c], errors="coerce") for c in ["lon", "lat", "weight"]}
    before = pd.to_numeric(raw[columns[0]], errors="coerce").fillna(0).to_numpy() > 0
    after = pd.to_numeric(raw[columns[1]], errors="coerce").fillna(0).to_numpy() > 0
    frame = pd.DataFrame(
        {
            "lon": numbers["lon"],
            "lat": numbers["lat"],
            "weight": numbers["weight"].fillna(0).clip(lower=0),
            "status": np.where(after, np.where(before, 1, 2), 0),
        }
    )
    return frame[frame["lon"].notna() & frame["lat"].notna()]


def _sites(rows: list[dict]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame([r for r in rows if r.get("lon") is not None and r.get("lat") is not None])
    if frame.empty:
        frame = pd.DataFrame(columns=["id", "type", "lon", "lat"])
    return frame


def _project(frame: pd.DataFrame, crs: CRS) -> pd.DataFrame:
    from pyproj import Transformer

    to_xy = Transformer.from_crs(4326, crs, always_xy=True)
    x, y = to_xy.transform(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
    return frame.assign(x=x, y=y)


def _region_shares(regions: gpd.GeoDataFrame, document: dict, shade: str) -> gpd.GeoDataFrame:
    blocks = {str(b["region"]): b for b in document["coverage"].get("by_region", [])}
    shares = []
    for name in regions["region"].astype(str):
        block = blocks.get(name) or {}
        covered = (block.get("types") or {}).get(shade) or {}
        total = block.get("demand_total")
        after = covered.get("covered_after")
        shares.append(after / total if total and after is not None else np.nan)
    return regions.assign(region=regions["region"].astype(str), share=shares)


def _data(folder: Path, document: dict) -> _Data:
    types = [str(t) for t in document["types"]]
    if not types:
        raise DataError(f"{folder / 'result.json'}: no facility types")
    shade = types[0]
    demand = _demand(folder, shade)
    selected = _sites(document.get("selected", []))
    existing = _sites(document.get("existing", []))
    lon = np.concatenate([demand["lon"], selected["lon"].astype(float)])
    lat = np.concatenate([demand["lat"], selected["lat"].astype(float)])
    crs = drawing_crs(document, lon, lat)
    labels = site_labels(document)
    keys = zip(selected["type"].astype(str), selected["id"].astype(str), strict=True)
    selected = selected.assign(label=[labels.get(key, "") for key in keys])
    order = [types.index(str(t)) if str(t) in types else len(types) for t in selected["type"]]
    by = ["_order", "priority"] if "priority" in selected.columns else ["_order"]
    selected = selected.assign(_order=order).sort_values(by, kind="stable")
    regions = read_regions(folder)
    if regions is not None:
        regions = _region_shares(regions.to_crs(crs), document, shade)
    return _Data(
        document=document,
        types=types,
        shade=shade,
        crs=crs,
        demand=_project(demand, crs),
        selected=_project(selected, crs),
        existing=_project(existing, crs),
        regions=regions,
    )


# --------------------------------------------------------------------------- the layout


@dataclass(frozen=True)
class _Frame:
    """Where a map sits on the sheet (mm) and what ground it shows (metres) at what scale."""

    rect_mm: tuple[float, float, float, float]  # x, y, width, height
    centre: tuple[float, float]
    scale: float  # the denominator: 1 mm on paper is `scale` mm on the ground

    @property
    def limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        half_w = self.rect_mm[2] * self.scale / 2000
        half_h = self.rect_mm[3] * self.scale / 2000
        cx, cy = self.centre
        return (cx - half_w, cx + half_w), (cy - half_h, cy + half_h)


@dataclass(frozen=True)
class _Layout:
    """The sheet's parts (mm): margin, title band, the map, the side panel's columns, inset."""

    margin: float
    map: _Frame
    columns: tuple[tuple[float, float, float, float], ...]
    inset: _Frame | None  # an enlargement of the place where new sites crowd, or None


def nice_scale(needed: float) -> float:
    """The smallest round scale denominator (one of NICE_SCALES × 10ⁿ) not below ``needed``."""
    if not needed > 0:
        return 1000.0
    power = 10.0 ** math.floor(math.log10(needed))
    return next(s * power for s in (*NICE_SCALES, 10.0) if s * power >= needed * (1 - 1e-9))


def _extent(data: _Data) -> tuple[np.ndarray, np.ndarray]:
    """x and y of everything drawn: demand, sites, the corners of the regions."""
    xs = [data.demand["x"].to_numpy(float), data.selected["x"].to_numpy(float)]
    ys = [data.demand["y"].to_numpy(float), data.selected["y"].to_numpy(float)]
    xs.append(data.existing["x"].to_numpy(float))
    ys.append(data.existing["y"].to_numpy(float))
    if data.regions is not None and len(data.regions):
        minx, miny, maxx, maxy = data.regions.total_bounds
        xs.append(np.array([minx, maxx]))
        ys.append(np.array([miny, maxy]))
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        raise DataError("map.png: nothing to draw (no demand point or site has coordinates)")
    return x[keep], y[keep]


def _fit(x: np.ndarray, y: np.ndarray, rect_mm: tuple[float, float, float, float]) -> _Frame:
    """The frame at the round scale that shows all of x, y (with a little room) in rect_mm."""
    width, height = max(float(np.ptp(x)), 100.0), max(float(np.ptp(y)), 100.0)
    needed = 1.04 * max(width / rect_mm[2], height / rect_mm[3]) * 1000
    centre = (float(x.min() + np.ptp(x) / 2), float(y.min() + np.ptp(y) / 2))
    return _Frame(rect_mm=rect_mm, centre=centre, scale=nice_scale(needed))


def _layout(data: _Data, style: _Style) -> _Layout:
    """The map as large as its shape allows; the panel beside it in one or two columns."""
    width, height = style.size_mm
    k = style.k
    margin, gap, top, bottom, column = 10 * k, 6 * k, 26 * k, 9 * k, 100 * k
    y0, map_h = margin + bottom, height - 2 * margin - top - bottom
    available = width - 2 * margin
    x, y = _extent(data)
    aspect = max(float(np.ptp(x)), 100.0) / max(float(np.ptp(y)), 100.0)
    map_w = float(np.clip(map_h * aspect, 0.45 * available, available - gap - column))
    # a wide area: a lower frame, at the top, rather than empty paper inside the frame
    low = float(np.clip(1.04 * map_w / aspect, 0.6 * map_h, map_h))
    main = _fit(x, y, (margin, y0 + map_h - low, map_w, low))
    panel_w = available - map_w - gap
    n = 2 if panel_w >= 1.9 * column + gap else 1
    column_w = (panel_w - gap * (n - 1)) / n
    columns = tuple(
        (margin + map_w + gap + i * (column_w + gap), y0, column_w, map_h) for i in range(n)
    )
    inset = _inset(data, main, (column_w, 0.8 * column_w)) if n == 2 else None
    return _Layout(margin=margin, map=main, columns=columns, inset=inset)


def _inset(data: _Data, main: _Frame, size_mm: tuple[float, float]) -> _Frame | None:
    """A frame four times larger in scale around the most new sites it can hold, when that is
    at least INSET_SITES (they crowd each other on the main map); its rect is set on drawing."""
    x = data.selected["x"].to_numpy(float)
    y = data.selected["y"].to_numpy(float)
    if len(x) < INSET_SITES:
        return None
    scale = nice_scale(main.scale / 4)
    half_w, half_h = 0.42 * size_mm[0] * scale / 1000, 0.42 * size_mm[1] * scale / 1000
    inside = (np.abs(x[:, None] - x[None, :]) <= half_w) & (
        np.abs(y[:, None] - y[None, :]) <= half_h
    )
    best = int(np.argmax(inside.sum(axis=1)))
    members = inside[best]
    if members.sum() < INSET_SITES:
        return None
    xs, ys = x[members], y[members]
    centre = (float(xs.min() + np.ptp(xs) / 2), float(ys.min() + np.ptp(ys) / 2))
    return _Frame(rect_mm=(0.0, 0.0, *size_mm), centre=centre, scale=scale)


def _axes_mm(fig: Figure, style: _Style, rect: tuple[float, float, float, float]) -> Axes:
    width, height = style.size_mm
    x, y, w, h = rect
    return fig.add_axes((x / width, y / height, w / width, h / height))


# --------------------------------------------------------------------------- the figure


def print_figure(folder: str | Path) -> Figure:
    """The printable map of the run outputs in ``folder`` as a matplotlib Figure (Agg canvas).

    Raises
    ------
    DataError
        ``result.json`` or ``demand_coverage.csv`` is missing or unreadable, ``plan.gpkg`` is
        unreadable, or ``outputs.paper`` / ``lang`` has a value the map does not know.
    """
    import matplotlib

    folder = Path(folder)
    document = read_result(folder, needs=("types", "selected", "coverage"))
    style = _style(document, folder / "result.json")
    data = _data(folder, document)
    with matplotlib.rc_context(_rc(style)):
        return _figure(data, style)


def _rc(style: _Style) -> dict[Any, Any]:
    return {
        "font.family": list(style.families),
        "pdf.fonttype": 3,  # subset glyphs; Type 42 embedding of a CJK font takes seconds
        "axes.unicode_minus": False,
        "path.simplify": True,
    }


def _figure(data: _Data, style: _Style) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = style.size_mm
    fig = Figure(figsize=(width * MM, height * MM), dpi=PNG_DPI)
    FigureCanvasAgg(fig)
    layout = _layout(data, style)
    ax = _axes_mm(fig, style, layout.map.rect_mm)
    _draw_map(ax, data, style, layout.map)
    _draw_north(fig, style, data, layout.map)
    _draw_scale_bar(ax, style, layout.map)
    first = _Panel(_axes_mm(fig, style, layout.columns[0]), style, layout.columns[0])
    _draw_legend(first, data, style)
    _summary(first, data, style)
    # the key goes under the summary when it fits there; else into the second column
    key_fits = first.rows_left(KEY_SIZE) >= len(data.selected) + 3
    key_panel = first
    if len(layout.columns) > 1:
        second = _Panel(_axes_mm(fig, style, layout.columns[1]), style, layout.columns[1])
        key_panel = first if key_fits else second
        if layout.inset is not None:
            w = second.width
            height = min(1.45 * w, second.height - 12 * style.k) if key_fits else 0.8 * w
            _draw_inset(fig, ax, second, data, style, layout.inset, height)
    _build_order(key_panel, data, style)
    _draw_title(fig, data, style, layout.margin)
    _draw_source(fig, data, style, layout.map, layout.margin)
    return fig


def _draw_inset(
    fig: Figure,
    main_ax: Axes,
    panel: _Panel,
    data: _Data,
    style: _Style,
    inset: _Frame,
    height: float,
) -> None:
    """The enlargement under a heading in ``panel``, and its outline on the main map."""
    from matplotlib.patches import Rectangle

    k = style.k
    panel.heading(style.text["inset"].format(scale=f"{inset.scale:,.0f}"), size=11)
    x, y0, w, _ = panel.rect
    frame = _Frame((x, y0 + panel.y - height - 1 * k, w, height), inset.centre, inset.scale)
    panel.y -= height + 4 * k
    ax = _axes_mm(fig, style, frame.rect_mm)
    _draw_map(ax, data, style, frame)
    _draw_scale_bar(ax, style, frame)
    (x0, x1), (y0_, y1) = frame.limits
    main_ax.add_patch(
        Rectangle(
            (x0, y0_), x1 - x0, y1 - y0_, fc="none", ec="#222222", lw=1.0 * k, ls="--", zorder=7
        )
    )


def _title(document: dict, style: _Style) -> str:
    for text in (document.get("title"), document.get("scenario")):
        if text and style.drawable(text):
            return str(text)
    return style.text["untitled"]


def _plan_line(data: _Data, style: _Style) -> str:
    document, text = data.document, style.text
    counts = [
        text["sites_of"].format(
            type=style.type_name(data.types, t),
            n=(document["types"][t] or {}).get("count_opened", 0),
        )
        for t in data.types
    ]
    parts = [text["plan_line"].format(sites=("、" if style.lang == "zh" else ", ").join(counts))]
    cost = document.get("total_cost")
    if cost is not None and float(cost) > 0:
        amount = _money(float(cost), document.get("cost_unit"), style)
        parts.append(text["total_cost"].format(money=amount))
    return text["sep"].join(parts)


def _draw_title(fig: Figure, data: _Data, style: _Style, margin: float) -> None:
    width, height = style.size_mm
    k = style.k
    y = height - margin
    fig.text(
        margin / width,
        y / height,
        _title(data.document, style),
        fontsize=22 * k,
        fontweight="bold",
        va="top",
        ha="left",
    )
    fig.text(
        margin / width,
        (y - 12.5 * k) / height,
        _plan_line(data, style),
        fontsize=11 * k,
        va="top",
        ha="left",
        color="#333333",
    )


def _sources(document: dict, style: _Style) -> str:
    names: list[str] = []
    for layer in (document.get("layers") or {}).values():
        path = (layer or {}).get("path")
        if not path:
            continue
        name = re.split(r"[\\/]", str(path))[-1]
        if name and name not in names and style.drawable(name):
            names.append(name)
    return ", ".join(names)


def _crs_name(crs: CRS) -> str:
    code = crs.to_epsg()
    return f"{crs.name} (EPSG:{code})" if code else crs.name


def _draw_source(fig: Figure, data: _Data, style: _Style, frame: _Frame, margin: float) -> None:
    text = style.text
    date = str(data.document.get("created") or dt.date.today().isoformat())
    parts = []
    files = _sources(data.document, style)
    if files:
        parts.append(text["sources"].format(files=files))
    parts.append(text["crs"].format(crs=style.shown(_crs_name(data.crs), str(data.crs))))
    parts.append(text["scale"].format(scale=f"{frame.scale:,.0f}", paper=style.paper))
    parts.append(text["made"].format(version=__version__, date=date))
    width, height = style.size_mm
    fig.text(
        margin / width,
        (margin + 2.5 * style.k) / height,
        text["sep"].join(parts),
        fontsize=7 * style.k,
        color="#555555",
        va="bottom",
        ha="left",
    )


# --------------------------------------------------------------------------- the map


def _palette() -> dict[str, Any]:
    from carecheck import palette

    return {
        "breaks": palette.SHARE_BREAKS,
        "ramp": palette.SHARE_COLOURS,
        "no_data": palette.NO_DATA_COLOUR,
        "status": palette.STATUS_COLOURS,
        "types": palette.TYPE_COLOURS,
        "shapes": palette.TYPE_SHAPES,
    }


def _type_symbol(data: _Data, t: str) -> tuple[str, str]:
    """(colour, matplotlib marker) of facility type ``t``, as the interactive map has them."""
    palette = _palette()
    k = data.types.index(t) if t in data.types else len(data.types)
    shape = palette["shapes"][k % len(palette["shapes"])]
    return palette["types"][k % len(palette["types"])], MARKERS.get(shape, "o")


def share_colour(share: float) -> str:
    palette = _palette()
    if not np.isfinite(share):
        return palette["no_data"]
    return palette["ramp"][int(np.searchsorted(palette["breaks"], share, side="right"))]


def _draw_map(ax: Axes, data: _Data, style: _Style, frame: _Frame) -> None:
    (x0, x1), (y0, y1) = frame.limits
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("white")
    for spine in ax.spines.values():
        spine.set_linewidth(0.8)
    if data.regions is not None and len(data.regions):
        _draw_regions(ax, data.regions, style, frame)
    _draw_demand(ax, data, style, frame)
    _draw_sites(ax, data, style, frame)


def _within(frame: _Frame, x: Any, y: Any) -> np.ndarray:
    """Which points fall inside the frame or just outside it (so edge symbols are whole)."""
    (x0, x1), (y0, y1) = frame.limits
    pad = 10 * frame.scale / 1000  # 10 mm on paper
    x, y = np.asarray(x, float), np.asarray(y, float)
    return (x > x0 - pad) & (x < x1 + pad) & (y > y0 - pad) & (y < y1 + pad)


def _polygon_paths(geometries: np.ndarray) -> list:
    """Shapely (multi)polygons as matplotlib paths, holes wound against their exterior."""
    import shapely
    from matplotlib.path import Path as MplPath
    from shapely.geometry.polygon import orient

    paths = []
    for geom in geometries:
        vertices, codes = [np.zeros((0, 2))], [np.zeros(0, dtype=np.uint8)]
        parts = [] if geom is None or geom.is_empty else shapely.get_parts(geom)
        for polygon in parts:
            if polygon.geom_type != "Polygon" or polygon.is_empty:
                continue
            polygon = orient(polygon)
            for ring in (polygon.exterior, *polygon.interiors):
                xy = np.asarray(ring.coords)[:, :2]
                code = np.full(len(xy), MplPath.LINETO, dtype=np.uint8)
                code[0], code[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
                vertices.append(xy)
                codes.append(code)
        paths.append(MplPath(np.concatenate(vertices), np.concatenate(codes)))
    return paths


def _draw_regions(ax: Axes, regions: gpd.GeoDataFrame, style: _Style, frame: _Frame) -> None:
    import matplotlib.patheffects as effects
    import shapely
    from matplotlib.collections import PathCollection

    (x0, x1), (y0, y1) = frame.limits
    pad = 10 * frame.scale / 1000
    tolerance = frame.scale * 0.15 / 1000  # 0.15 mm on paper
    geometry = shapely.simplify(regions.geometry.to_numpy(), tolerance, preserve_topology=True)
    geometry = shapely.clip_by_rect(geometry, x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    paths = _polygon_paths(geometry)
    colours = [share_colour(s) for s in regions["share"]]
    fill = PathCollection(paths, facecolors=colours, edgecolors="none", alpha=REGION_ALPHA)
    edges = PathCollection(paths, facecolors="none", edgecolors="#4d4d4d", linewidths=0.6)
    for collection, z, gid in ((fill, 1.0, "region-shading"), (edges, 1.5, "region-outlines")):
        collection.set_transform(ax.transData)
        collection.set_zorder(z)
        collection.set_gid(gid)
        ax.add_collection(collection, autolim=False)
    halo = [effects.withStroke(linewidth=2.2 * style.k, foreground="white")]
    # names go in the part of each region inside the frame, away from its edge
    room = 6 * style.k * frame.scale / 1000
    inner = shapely.clip_by_rect(geometry, x0 + room, y0 + room, x1 - room, y1 - room)
    for name, geom in zip(regions["region"], inner, strict=True):
        label = style.shown(name)
        if label and geom is not None and not geom.is_empty:
            point = geom.representative_point()
            ax.text(
                point.x,
                point.y,
                label,
                fontsize=9.5 * style.k,
                color="#303030",
                ha="center",
                va="center",
                zorder=3,
                path_effects=halo,
                clip_on=True,
            )


def _point_sizes(weight: np.ndarray, style: _Style) -> tuple[np.ndarray, float, float]:
    """Marker areas (points²) proportional to weight; also the largest diameter and its weight.

    The reference weight is the 99th percentile (one huge unit does not shrink all others);
    with many points the diameter shrinks so they do not hide each other.
    """
    reference = float(np.quantile(weight, 0.99)) if len(weight) else 1.0
    reference = reference if reference > 0 else 1.0
    crowding = 1.0 if len(weight) <= 5000 else max(0.4, math.sqrt(5000 / len(weight)))
    diameter = 7.0 * style.k * crowding
    areas = diameter**2 * np.minimum(weight / reference, 2.0)
    return np.maximum(areas, (0.9 * style.k) ** 2), diameter, reference


def _draw_demand(ax: Axes, data: _Data, style: _Style, frame: _Frame) -> None:
    if data.demand.empty:
        return
    areas, _, _ = _point_sizes(data.demand["weight"].to_numpy(float), style)
    demand = data.demand.assign(area=areas)
    demand = demand[_within(frame, demand["x"], demand["y"])]
    demand = demand.sort_values("weight", ascending=False, kind="stable")
    from matplotlib.colors import to_rgba_array

    colours = to_rgba_array(_palette()["status"], alpha=0.85)[demand["status"].to_numpy(int)]
    many = len(demand) > RASTER_POINTS
    ax.scatter(
        demand["x"].to_numpy(float),
        demand["y"].to_numpy(float),
        s=demand["area"].to_numpy(float),
        c=colours,
        linewidths=0 if many else 0.25 * style.k,  # white rims only where points are few
        edgecolors="white",
        zorder=2,
        rasterized=many,
    )


def _draw_sites(ax: Axes, data: _Data, style: _Style, frame: _Frame) -> None:
    k = style.k
    for t in data.types:
        colour, marker = _type_symbol(data, t)
        # existing facilities small and hollow, new sites larger and filled, drawn above them
        for sites, size, filled, z in (
            (data.existing, 4.2, False, 4),
            (data.selected, 7.5, True, 5),
        ):
            shown = sites[sites["type"].astype(str) == t]
            shown = shown[_within(frame, shown["x"], shown["y"])]
            if len(shown):
                ax.scatter(
                    shown["x"],
                    shown["y"],
                    s=(size * k) ** 2,
                    marker=marker,
                    facecolors=colour if filled else "white",
                    edgecolors="white" if filled else colour,
                    linewidths=0.9 * k,
                    zorder=z,
                )
    _draw_site_labels(ax, data, style, frame)


def _draw_site_labels(ax: Axes, data: _Data, style: _Style, frame: _Frame) -> None:
    """Each new site's label beside it, on the side where it hides the fewest other labels."""
    import matplotlib.patheffects as effects

    k = style.k
    size_pt = 8 * k
    halo = [effects.withStroke(linewidth=2.4 * k, foreground="white")]
    ground_per_mm = frame.scale / 1000
    offsets_mm = [
        (k * dx, k * dy) for dx, dy in ((3.2, 2), (-3.2, 2), (3.2, -2), (-3.2, -2), (0, 3.6))
    ]
    offsets_mm.append((0, -3.6 * k))
    placed: list[tuple[float, float, float, float]] = []
    sites = data.selected[_within(frame, data.selected["x"], data.selected["y"])]
    for row in sites.itertuples(index=False):  # in build order: the first get the best places
        colour, _ = _type_symbol(data, str(row.type))
        label = str(row.label)
        w = text_width_mm(label, size_pt) + 0.6
        h = size_pt * PT_MM + 0.4
        best = min(
            offsets_mm,
            key=lambda o: sum(_overlap(_box(row, o, w, h, ground_per_mm), b) for b in placed),
        )
        placed.append(_box(row, best, w, h, ground_per_mm))
        ax.annotate(
            label,
            (row.x, row.y),
            xytext=(best[0] / PT_MM, best[1] / PT_MM),
            textcoords="offset points",
            ha="left" if best[0] > 0 else ("right" if best[0] < 0 else "center"),
            va="bottom" if best[1] > 0 else "top",
            fontsize=size_pt,
            fontweight="bold",
            color=colour,
            zorder=6,
            path_effects=halo,
        )


def _box(row: Any, offset: tuple[float, float], w: float, h: float, per_mm: float) -> tuple:
    """A label's box (mm on paper, from the map's origin) placed at ``offset`` from its site."""
    x, y = row.x / per_mm + offset[0], row.y / per_mm + offset[1]
    x0 = x if offset[0] > 0 else (x - w if offset[0] < 0 else x - w / 2)
    y0 = y if offset[1] > 0 else y - h
    return (x0, y0, x0 + w, y0 + h)


def _overlap(a: tuple, b: tuple) -> float:
    dx = min(a[2], b[2]) - max(a[0], b[0])
    dy = min(a[3], b[3]) - max(a[1], b[1])
    return dx * dy if dx > 0 and dy > 0 else 0.0


def _true_north(data: _Data, frame: _Frame) -> float:
    """The angle (degrees, counter-clockwise from the map's up) of true north at its centre."""
    from pyproj import Transformer

    back = Transformer.from_crs(data.crs, 4326, always_xy=True)
    ahead = Transformer.from_crs(4326, data.crs, always_xy=True)
    lon, lat = back.transform(*frame.centre)
    x1, y1 = ahead.transform(lon, min(lat + 0.05, 89.9))
    return math.degrees(math.atan2(-(x1 - frame.centre[0]), y1 - frame.centre[1]))


def _draw_north(fig: Figure, style: _Style, data: _Data, frame: _Frame) -> None:
    from matplotlib.patches import Polygon

    k = style.k
    x, y, w, h = frame.rect_mm
    side = 16 * k
    ax = _axes_mm(fig, style, (x + w - side - 4 * k, y + h - side - 6 * k, side, side + 4 * k))
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1.5)
    ax.set_axis_off()
    angle = math.radians(_true_north(data, frame))

    def turned(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        c, s = math.cos(angle), math.sin(angle)
        return [(px * c - py * s, px * s + py * c) for px, py in points]

    ax.add_patch(Polygon(turned([(0, 1), (-0.45, -0.8), (0, -0.4)]), fc="black", ec="black"))
    ax.add_patch(Polygon(turned([(0, 1), (0.45, -0.8), (0, -0.4)]), fc="white", ec="black"))
    tip = turned([(0, 1.3)])[0]
    ax.text(*tip, style.text["north"], ha="center", va="center", fontsize=10 * k, weight="bold")


def nice_length(limit_m: float) -> float:
    """The longest length of 1, 2 or 5 × 10ⁿ metres not above ``limit_m``."""
    power = 10.0 ** math.floor(math.log10(max(limit_m, 1.0)))
    return max(step * power for step in (1.0, 2.0, 5.0) if step * power <= max(limit_m, 1.0))


def _draw_scale_bar(ax: Axes, style: _Style, frame: _Frame) -> None:
    from matplotlib.patches import Rectangle

    k = style.k
    per_mm = frame.scale / 1000  # ground metres per paper millimetre
    length = nice_length(frame.rect_mm[2] * 0.3 * per_mm)
    (x0, _), (y0, _) = frame.limits
    left, base = x0 + 8 * k * per_mm, y0 + 7 * k * per_mm
    bar_h = 1.6 * k * per_mm
    unit, divisor = (style.text["km"], 1000.0) if length >= 1000 else (style.text["m"], 1.0)
    ax.add_patch(
        Rectangle(
            (left - 3 * k * per_mm, base - 3 * k * per_mm),
            length + 14 * k * per_mm,
            bar_h + 9.5 * k * per_mm,
            fc="white",
            ec="none",
            alpha=0.85,
            zorder=7,
        )
    )
    parts = 4
    for i in range(parts):
        ax.add_patch(
            Rectangle(
                (left + i * length / parts, base),
                length / parts,
                bar_h,
                fc="black" if i % 2 == 0 else "white",
                ec="black",
                lw=0.6 * k,
                zorder=8,
            )
        )
    for i in (0, parts // 2, parts):
        value = length * i / parts / divisor
        text = f"{value:g}" + (f" {unit}" if i == parts else "")
        ax.text(
            left + length * i / parts,
            base + bar_h + 1.2 * k * per_mm,
            text,
            ha="center",
            va="bottom",
            fontsize=7.5 * k,
            zorder=9,
        )


# --------------------------------------------------------------------------- the panel


class _Panel:
    """Text and symbols written top-down on an axes measured in millimetres."""

    def __init__(self, ax: Axes, style: _Style, rect: tuple[float, float, float, float]) -> None:
        self.ax, self.style, self.k, self.rect = ax, style, style.k, rect
        self.width, self.height = rect[2], rect[3]
        self.y = self.height
        ax.set_xlim(0, self.width)
        ax.set_ylim(0, self.height)
        ax.set_axis_off()

    def step(self, size: float) -> float:
        """The height of a line of text of ``size`` points (mm)."""
        return size * PT_MM * 1.45 * self.k

    def heading(self, text: str, *, size: float = 9.5) -> None:
        if self.y < self.height:
            self.y -= (2.5 if size > 10 else 1.2) * self.k
        self.line(text, size=size, weight="bold")

    def line(self, text: str, *, size: float = 8.0, x: float = 0.0, weight: str = "normal") -> None:
        """``text`` at the cursor, wrapped where it would run past the panel's edge."""
        room = self.width - x * self.k
        for part in wrapped(text, size * self.k, room):
            self.ax.text(
                x * self.k,
                self.y,
                part,
                fontsize=size * self.k,
                va="top",
                ha="left",
                fontweight=weight,
            )
            self.y -= self.step(size)

    def symbol_line(
        self, text: str, draw: Any, *, size: float = 8.0, x: float = 0.0, text_at: float = 7.0
    ) -> None:
        """``draw(x_mm, y_mm)`` puts a symbol before the text, centred on the line."""
        draw((x + 2.5) * self.k, self.y - size * PT_MM * 0.6 * self.k)
        self.line(text, size=size, x=x + text_at)

    def rows_left(self, size: float) -> int:
        return max(int(self.y / self.step(size)), 0)


def _draw_legend(panel: _Panel, data: _Data, style: _Style) -> None:
    panel.heading(style.ui["legend"], size=11)
    if data.regions is not None and len(data.regions):
        _legend_regions(panel, data, style)
    _legend_demand(panel, data, style)
    _legend_sites(panel, data, style)


def _legend_regions(panel: _Panel, data: _Data, style: _Style) -> None:
    from matplotlib.patches import Rectangle

    palette = _palette()
    panel.heading(style.text["shade_type"].format(type=style.type_name(data.types, data.shade)))
    bounds = [0.0, *palette["breaks"], 1.0]
    entries = [
        (colour, f"{bounds[i]:.0%}–{bounds[i + 1]:.0%}") for i, colour in enumerate(palette["ramp"])
    ]
    entries.append((palette["no_data"], style.ui["no_data"]))
    k = style.k

    def swatch(colour: str) -> Any:
        def draw(x: float, y: float) -> None:
            panel.ax.add_patch(
                Rectangle(
                    (x - 2.5 * k, y - 1.5 * k), 5 * k, 3 * k, fc=colour, alpha=REGION_ALPHA, lw=0
                )
            )
            panel.ax.add_patch(
                Rectangle((x - 2.5 * k, y - 1.5 * k), 5 * k, 3 * k, fc="none", ec="#4d4d4d", lw=0.5)
            )

        return draw

    rows = (len(entries) + 1) // 2
    top = panel.y
    for i, (colour, text) in enumerate(entries):
        panel.y = top - (i % rows) * panel.step(8.0)
        panel.symbol_line(text, swatch(colour), x=(i // rows) * 34)
    panel.y = top - rows * panel.step(8.0)


def _legend_demand(panel: _Panel, data: _Data, style: _Style) -> None:
    palette, k = _palette(), style.k
    panel.heading(style.ui["layer_demand"].format(type=style.type_name(data.types, data.shade)))
    top = panel.y
    names = [style.ui[f"status_{status}"] for status in (0, 1, 2)]
    spacing = max(text_width_mm(name, 8.0 * k) for name in names) / k + 11
    for status in (0, 1, 2):

        def dot(x: float, y: float, colour: str = palette["status"][status]) -> None:
            panel.ax.scatter([x], [y], s=(4.5 * k) ** 2, c=colour, edgecolors="white", lw=0.3)

        panel.y = top
        panel.symbol_line(names[status], dot, x=status * spacing)
    weight = data.demand["weight"].to_numpy(float)
    if not len(weight) or not weight.max() > 0:
        return
    _, diameter, reference = _point_sizes(weight, style)
    panel.line(style.text["size"], size=7.5)
    top, x = panel.y, 2.5 * k
    for value in _size_steps(reference):
        d = diameter * math.sqrt(min(value / reference, 2.0))
        radius_mm = d * PT_MM / 2
        panel.ax.scatter([x + radius_mm], [top - 3 * k], s=d**2, c="#8c8c8c", lw=0)
        panel.ax.text(
            x + 2 * radius_mm + 1.5 * k,
            top - 3 * k,
            style.text["people"].format(n=f"{value:,.0f}"),
            va="center",
            fontsize=7.5 * k,
        )
        x += 2 * radius_mm + 22 * k
    panel.y = top - 6 * k


def _size_steps(reference: float) -> list[float]:
    """Three round weights for the point-size legend: about the 99th percentile, ½, ⅕."""
    top = float(f"{reference:.1g}")
    steps = {top, float(f"{top / 2:.1g}"), float(f"{top / 5:.1g}")}
    return sorted((s for s in steps if s > 0), reverse=True)


def _legend_sites(panel: _Panel, data: _Data, style: _Style) -> None:
    k = style.k
    panel.heading(f"{style.text['new_site']} / {style.text['existing_site']}")
    for t in data.types:
        colour, marker = _type_symbol(data, t)

        def pair(x: float, y: float, colour: str = colour, marker: str = marker) -> None:
            panel.ax.scatter([x], [y], s=(7.5 * k) ** 2, marker=marker, c=colour, ec="white")
            panel.ax.scatter(
                [x + 6 * k], [y], s=(4.2 * k) ** 2, marker=marker, fc="white", ec=colour, lw=0.9
            )

        panel.symbol_line(style.type_name(data.types, t), pair, text_at=12)
    rule = "label_rule_many" if len(data.types) > 1 else "label_rule_one"
    panel.line(style.text[rule], size=7.5)


def _summary(panel: _Panel, data: _Data, style: _Style) -> None:
    document, text = data.document, style.text
    panel.heading(text["summary"], size=11)
    total = document["coverage"].get("demand_total") or 0
    for t in data.types:
        covered = document["coverage"]["types"].get(t, {})
        panel.line(
            text["coverage_line"].format(
                type=style.type_name(data.types, t),
                n=(document["types"][t] or {}).get("count_opened", 0),
                before=_share(covered.get("covered_before", 0), total),
                after=_share(covered.get("covered_after", 0), total),
            )
        )
    cost = document.get("total_cost")
    if cost is not None:
        amount = _money(float(cost), document.get("cost_unit"), style)
        panel.line(f"{style.ui['total_cost']}{text['colon']}{amount}")
    gap = document.get("gap")
    panel.line(
        text["solver_line"].format(
            status=style.value("status", document.get("status"), str(document.get("status"))),
            gap="–" if gap is None else f"{float(gap):.2%}",
        )
    )


def _key_line(site: dict, style: _Style, width_mm: float) -> str:
    """ "A3  name · tier · region", the name shortened (then the details dropped) to fit."""
    size = KEY_SIZE * style.k
    name = style.shown(site.get("name")) or str(site.get("id"))
    details = [
        style.value("tier", site.get("tier")),
        style.value("action", site.get("action")) if site.get("action") == "expand" else "",
        style.shown(site.get("region")),
    ]
    details = [d for d in details if d]
    while True:
        line = " · ".join([f"{site['label']}  {name}", *details])
        if text_width_mm(line, size) <= width_mm:
            return line
        if len(name) > 6:
            name = name[: len(name) - 2] + "…"
        elif details:
            details.pop()
        else:
            return line


def _build_order(panel: _Panel, data: _Data, style: _Style) -> None:
    """The key from label to site, in build order per type; as many as the panel holds."""
    if data.selected.empty:
        return
    panel.heading(style.text["key"], size=11)
    rows = panel.rows_left(KEY_SIZE)
    records = data.selected.to_dict("records")  # in build order, type by type
    columns = 1 if len(records) <= rows or panel.width < 150 * style.k else 2
    room = rows * columns
    shown = records if len(records) <= room else records[: max(room - 1, 0)]
    column_w = panel.width / columns  # mm
    top = panel.y
    for i, site in enumerate(shown):
        panel.y = top - (i % rows) * panel.step(KEY_SIZE)
        line = _key_line(site, style, column_w - 3 * style.k)
        panel.line(line, size=KEY_SIZE, x=(i // rows) * column_w / style.k)
    if len(shown) < len(records):
        panel.y = top - (room - 1) % rows * panel.step(KEY_SIZE)
        panel.line(
            style.text["more"].format(n=len(records) - len(shown)),
            size=KEY_SIZE,
            x=(columns - 1) * column_w / style.k,
        )


# --------------------------------------------------------------------------- the files


def write_print_map(folder: str | Path) -> list[Path]:
    """Write ``map.png`` (PNG_DPI) and ``map.pdf`` (vector) into ``folder``; returns their paths.

    With ``lang: zh`` and no CJK font, the sheet is drawn in English and :func:`font_note`'s
    text is logged as a warning.

    Raises
    ------
    DataError
        As :func:`print_figure`.
    """
    import matplotlib

    folder = Path(folder)
    document = read_result(folder)
    note = font_note(document.get("lang") or "zh")
    if note:
        log.warning(note)
    figure = print_figure(folder)
    style = _style(document, folder / "result.json")
    title = _title(document, style)
    creator = f"carecheck {__version__}"
    with matplotlib.rc_context(_rc(style)):
        png = _saved(
            folder / PNG_FILE,
            lambda tmp: figure.savefig(
                tmp,
                format="png",
                dpi=PNG_DPI,
                metadata={"Title": title, "Software": creator},
                pil_kwargs={"compress_level": 3},  # 20 % faster than the default 6, 2 % larger
            ),
        )
        pdf = _saved(
            folder / PDF_FILE,
            lambda tmp: figure.savefig(
                tmp, format="pdf", dpi=PNG_DPI, metadata={"Title": title, "Creator": creator}
            ),
        )
    return [png, pdf]


def _saved(path: Path, save: Any) -> Path:
    """``save(tmp)`` writes the file beside ``path``; it replaces ``path`` once complete."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
