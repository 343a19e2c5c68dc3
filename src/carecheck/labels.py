"""What the map shows in each language: one table of display text.

Interface text, and the display names of values found in a run's outputs (facility types,
site tiers, actions, solver statuses). A value without an entry here is shown as it is in the
data, so a scenario with other facility types or tiers needs no code change, only (optionally)
an entry here. The renderer (:mod:`carecheck.maps`) knows no type or tier by name.
"""

from __future__ import annotations

# LABELS[lang][kind][key]: kind "ui" is the interface text (keys are the renderer's own); the
# other kinds name data values: "type" facility types, "tier" site tiers and "tier_letter" the
# letter a selected site's symbol carries (else the tier's first character), "action" how a
# site is opened ("new" names a site without an action), "status" the solver status.
LABELS: dict[str, dict[str, dict[str, str]]] = {
    "zh": {
        "ui": {
            "summary": "规划摘要",
            "coverage": "老年人覆盖，按设施类型（规划前 → 规划后）",
            "elderly_total": "老年人口",
            "sites": "新开设施",
            "total_cost": "总投资",
            "budget": "预算",
            "solver": "求解",
            "gap": "相对间隙",
            "legend": "图例",
            "numbering": "新选址编号 = 建设顺序（1 = 最先；多类设施时字母 A、B… 表示设施类型）",
            "tier_sizes": "符号大小：",
            "choropleth": "区域覆盖率（规划后）",
            "no_data": "无数据",
            "demand": "老年人口点（大小 = 老年人数）",
            "status_0": "未覆盖",
            "status_1": "原已覆盖",
            "status_2": "新覆盖",
            "selected": "新选址",
            "existing": "现有设施",
            "expand": "扩建",
            "reach": "服务半径",
            "reach_selected": "新选址",
            "reach_existing": "现有设施",
            "layer_choropleth": "区域覆盖率：{type}",
            "layer_labels": "区域名称",
            "layer_demand": "老年人口点（按{type}覆盖着色）",
            "layer_selected": "新选址",
            "layer_existing": "现有设施",
            "layer_reach": "服务半径：{type}",
            "tiles_osm": "OpenStreetMap（需联网）",
            "tiles_light": "浅色底图（需联网）",
            "tiles_none": "无底图（仅矢量）",
            "layers": "图层",
            "tiles_failed": "底图无法加载（未联网？），其余图层不受影响",
            "id": "编号",
            "name": "名称",
            "type": "类型",
            "tier": "层级",
            "action": "方式",
            "beds": "床位",
            "cost": "投资",
            "new_covered": "新覆盖老年人",
            "unique_covered": "仅此处覆盖",
            "radius": "服务半径",
            "by_road": "（道路距离）",
            "walk": "步行",
            "drive": "车程",
            "minutes": "分钟",
            "region": "区域",
            "weight": "老年人数",
            "nearest": "最近设施",
            "fullscreen": "全屏",
            "fullscreen_exit": "退出全屏",
            "sites_opened": "新开设施",
            "none": "无",
        },
        "type": {"institution": "养老机构", "embedded": "社区嵌入式养老机构"},
        "tier": {"county": "县城", "town": "中心镇", "village": "重点村"},
        "tier_letter": {"county": "县", "town": "镇", "village": "村"},
        "action": {"new": "新建", "expand": "扩建"},
        "status": {
            "optimal": "最优",
            "time_limit": "达到时间上限",
            "infeasible": "不可行",
            "feasible": "可行",
        },
    },
    "en": {
        "ui": {
            "summary": "Plan summary",
            "coverage": "Elderly covered, per facility type (before → after)",
            "elderly_total": "Elderly",
            "sites": "Sites opened",
            "total_cost": "Total cost",
            "budget": "budget",
            "solver": "Solver",
            "gap": "gap",
            "legend": "Legend",
            "numbering": "New sites are numbered in build order (1 = first; with several types, "
            "a letter A, B … names the type)",
            "tier_sizes": "Symbol size: ",
            "choropleth": "Covered share by region (after)",
            "no_data": "no data",
            "demand": "Elderly (size = number of elderly)",
            "status_0": "not covered",
            "status_1": "covered before",
            "status_2": "newly covered",
            "selected": "Selected site",
            "existing": "Existing facility",
            "expand": "expansion",
            "reach": "Reach",
            "reach_selected": "selected",
            "reach_existing": "existing",
            "layer_choropleth": "Coverage by region: {type}",
            "layer_labels": "Region names",
            "layer_demand": "Elderly, coloured by {type} coverage",
            "layer_selected": "Selected sites",
            "layer_existing": "Existing facilities",
            "layer_reach": "Reach: {type}",
            "tiles_osm": "OpenStreetMap (online)",
            "tiles_light": "Light basemap (online)",
            "tiles_none": "No tiles (vector only)",
            "layers": "Layers",
            "tiles_failed": "The base map cannot load (no internet?); other layers work",
            "id": "id",
            "name": "name",
            "type": "type",
            "tier": "tier",
            "action": "action",
            "beds": "beds",
            "cost": "cost",
            "new_covered": "elderly newly covered",
            "unique_covered": "covered only here",
            "radius": "reach",
            "by_road": "by road",
            "walk": "walk",
            "drive": "drive",
            "minutes": "min",
            "region": "region",
            "weight": "elderly",
            "nearest": "nearest",
            "fullscreen": "Full screen",
            "fullscreen_exit": "Exit full screen",
            "sites_opened": "sites opened",
            "none": "none",
        },
        "type": {"institution": "care institution", "embedded": "community-embedded home"},
        "tier": {"county": "county", "town": "town", "village": "village"},
        "tier_letter": {"county": "C", "town": "T", "village": "V"},
        "action": {"new": "new", "expand": "expand"},
        "status": {"optimal": "optimal", "time_limit": "time limit reached"},
    },
}
LANGS = tuple(LABELS)

# Known site tiers, largest first: legends and summaries list tiers in this order (any other
# tier follows, by name), and a selected site of the tier is drawn this many pixels wide (any
# other tier at the renderer's default size).
TIER_SIZES: dict[str, int] = {"county": 28, "town": 22, "village": 17}


def site_labels(document: dict) -> dict[tuple[str, str], str]:
    """The label of every selected site on the maps and in the tables, by (type, id).

    The site's ``priority`` within its type (1 = build first); with several facility types,
    preceded by the type's letter in the order of ``result.json`` ``types`` (A, B, C …), so
    tables can name sites as the map does.
    """
    types = list(document.get("types", {}))
    several = len(types) > 1
    labels: dict[tuple[str, str], str] = {}
    seen: dict[str, int] = {}
    for site in document.get("selected", []):
        t = str(site.get("type"))
        seen[t] = seen.get(t, 0) + 1
        priority = site.get("priority") or seen[t]
        k = types.index(t) if t in types else len(types)
        letter = (chr(ord("A") + k) if k < 26 else f"{k + 1}-") if several else ""
        labels[(t, str(site.get("id")))] = f"{letter}{int(priority)}"
    return labels
