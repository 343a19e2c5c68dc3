"""The report a bureau chief is handed: one content model, rendered as Word and as Markdown.

:func:`report_blocks` turns a finished run's ``result.json`` (and the figures beside it) into
plain blocks — :class:`Heading`, :class:`Paragraph`, :class:`Bullets`, :class:`Table`,
:class:`Figure` — in the run's language (``lang``: zh, the default, or en). Two renderers
read the same blocks: :func:`markdown_report` (``report.md``) and :func:`write_docx`
(``report.docx``, python-docx). A table holds raw values and a number format per column, so
each renderer prints the same figures: counts with thousands separators, money with one
decimal and its unit in the header, shares as percentages.

Coverage is reported per facility type and never summed over types: the weighted sum over
types is the objective (目标值（各类设施覆盖老年人数加权和）), not a number of elderly.

``report.docx`` is built on a template, ``assets/report-template.docx`` (A4 portrait; 宋体
body, 黑体 headings, set as the East Asian fonts; a table style ``Carecheck Table`` whose
header row is bold and shaded): an institute restyles the report by editing that file's
styles in Word, or by passing its own template with the same style names (a missing style
falls back to Word's own). :func:`build_template` writes the shipped template::

    python -c "from carecheck.handout import build_template; build_template()"
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carecheck.errors import DataError
from carecheck.labels import LABELS, site_labels
from carecheck.outdir import read_result
from carecheck.textsafe import markdown_text
from carecheck.units import money

if TYPE_CHECKING:  # pragma: no cover
    from carecheck.objectives.base import Objective

TEMPLATE_NAME = "report-template.docx"
TABLE_STYLE = "Carecheck Table"  # the template's table style (header row bold and shaded)
CELL_STYLE = "Table Text"  # the template's paragraph style of table cells
DASH = "—"  # a value that is not there (no basis, no cost, no region)

# number formats of table columns (None: text)
COUNT = ",.0f"
MONEY = ",.1f"
SHARE = ".1%"
DECIMAL = ",.1f"
SIGNED = "+,.0f"

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "date": "日期：{date}",
        "scenario": "方案：",
        "version": "carecheck {version}",
        "summary": "摘要",
        "summary_type": "{type}：新开 {opened} 处；覆盖老年人 {before} → {after}（{share_before} → "
        "{share_after}），新增 {added}。",
        "summary_cost": "新开设施总投资：{cost}",
        "of_budget": "，预算 {budget}",
        "summary_status": "求解状态：{status}{gap}；独立核验：{verified}。",
        "gap_text": "，相对间隙 {gap}",
        "verified_ok": "通过",
        "verified_bad": "发现问题（见“求解与核验”）",
        "figure_map": "规划布局图（新选址按建设顺序编号）",
        "figure_frontier": "覆盖与设施数量的权衡",
        "figure": "图 {n}　{caption}",
        "question": "规划问题",
        "objective": "目标值",
        "objective_other": "目标：{kind}。",
        "col_type": "设施类型",
        "col_tier": "层级",
        "col_count_asked": "数量要求",
        "col_count_opened": "新开",
        "col_candidates": "候选点",
        "col_existing": "现有设施",
        "col_alpha": "目标权重",
        "all_tiers": "（全部）",
        "type_default": "（类型默认）",
        "constraints": "约束条件：",
        "budget": "总投资不超过 {budget}。",
        "no_budget": "未设总投资上限。",
        "region_min_sites": "每个区域至少新开 {n} 处{type}。",
        "region_min_coverage": "每个区域{type}的覆盖率不低于 {share}。",
        "min_beds": "{type}新增床位不少于 {n} 张。",
        "beds_rule": "床位需求按每千名老年人 {per_1000:g} 张计。",
        "sources": "数据来源",
        "col_role": "数据",
        "col_file": "文件",
        "col_rows_read": "读入行数",
        "col_rows_kept": "保留行数",
        "col_crs": "坐标系",
        "col_coords": "坐标转换",
        "col_notes": "说明",
        "role_demand": "老年人口",
        "role_regions": "区域边界",
        "role_candidates": "{type}候选点",
        "role_existing": "现有{type}",
        "no_conversion": "无",
        "encoding": "编码 {encoding}",
        "columns": "字段：{pairs}",
        "working_crs": "计算坐标系（以米为单位）：{crs}。",
        "reach": "服务范围及依据",
        "col_reach": "服务范围",
        "col_basis": "依据",
        "radius_m": "{value} 米（直线距离）",
        "network_m": "{value} 米（道路距离）",
        "travel_min": "{value} 分钟（{mode}）",
        "mode_walk": "步行",
        "mode_drive": "车程",
        "coverage_rule": "覆盖规则：老年人口点到设施的距离（直线，或沿道路；按出行时间时含到达"
        "道路的步行）不超过该设施所在层级的服务范围，即为覆盖。",
        "sites": "建设选址（按建设顺序）",
        "sites_type": "{type}：{n} 处",
        "sites_cost": "，投资 {cost}",
        "sites_beds": "，新增床位 {beds} 张",
        "no_sites": "无新开设施。",
        "col_priority": "顺序",
        "col_label": "图上编号",
        "col_id": "编号",
        "col_name": "名称",
        "col_action": "方式",
        "col_region": "区域",
        "col_cost": "投资",
        "col_beds": "床位",
        "col_marginal": "新增覆盖老年人",
        "col_new_covered": "可覆盖原未覆盖老年人",
        "col_unique": "仅此处覆盖",
        "unit_header": "{name}（{unit}）",
        "sites_note": "顺序即建设优先顺序，1 最先建设：每一处都是在前序选址建成后新增覆盖最多的"
        "一处。"
        "“新增覆盖老年人”（边际值）是按此顺序逐处建设时，该处新增覆盖的、此前未被现有设施和"
        "顺序在前的选址覆盖的老年人数；预算削减时可自表尾起舍去。“可覆盖原未覆盖老年人”是该处"
        "单独建设时覆盖的原未覆盖老年人数，“仅此处覆盖”是规划中只有该处覆盖的老年人数。",
        "total_cost": "新开设施总投资：{cost}{budget}。",
        "coverage": "覆盖情况（规划前 → 规划后）",
        "coverage_note": "老年人口总数 {total}。覆盖按设施类型分别统计：同一位老年人可被不同类型的"
        "设施同时覆盖，各类型的覆盖人数不能相加。",
        "col_covered_before": "规划前覆盖",
        "col_covered_after": "规划后覆盖",
        "col_share_before": "规划前覆盖率",
        "col_share_after": "规划后覆盖率",
        "col_added": "新增覆盖",
        "col_elderly": "老年人口",
        "objective_value": "{label}：{value}。",
        "by_region": "按区域：{type}",
        "beds": "床位",
        "beds_need": "按每千名老年人 {per_1000:g} 张计，床位需求 {need} 张{nursing}。"
        "床位 {before} → {after} 张（每千名老年人 {per_before} → {per_after} 张）。"
        "服务范围内床位可满足的需求（任何设施不超过其床位）：{served_before} → {served_after}；"
        "规划后仍未满足：{unmet}。",
        "nursing": "，其中护理型床位 {n} 张（{share}）",
        "col_bed_need": "床位需求",
        "col_per_1000_before": "规划前每千人床位",
        "col_per_1000_after": "规划后每千人床位",
        "col_served_before": "规划前可满足需求",
        "col_served_after": "规划后可满足需求",
        "col_unmet": "规划后未满足",
        "beds_no_region": "{n} 处有床位的设施没有区域字段，未计入分区域床位。",
        "checks": "规划无法改变之处",
        "idle": "{type}：{n} 处新开设施不增加覆盖（其服务范围内的老年人已被现有设施或顺序在前的"
        "选址覆盖）：{ids}。这是数量要求（",
        "idle_fix": "）强制开设的；改用 ",
        "idle_end": " 可不开设。",
        "no_idle": "{type}：每一处新开设施都增加覆盖。",
        "unreachable": "{type}：{weight} 名老年人（{units} 个需求点）不在任何候选点和现有设施的服务"
        "范围内，任何候选点方案都无法覆盖{regions}。",
        "unreachable_regions": "（{regions}）",
        "no_unreachable": "{type}：所有老年人都在某个候选点或现有设施的服务范围内。",
        "comparison": "与方案 {name} 比较",
        "comparison_intro": "本方案的约束与方案 {name}{title} 相比带来的变化：各方案规划后各类设施"
        "覆盖的老年人数及差值。",
        "col_baseline": "{name} 覆盖",
        "col_this": "本方案覆盖",
        "col_difference": "差值（人）",
        "col_baseline_share": "{name} 覆盖率",
        "col_this_share": "本方案覆盖率",
        "comparison_cost": "总投资：{before} → {after}。目标值：{obj_before} → {obj_after}。",
        "comparison_sites": "共同的选址 {common} 处；仅在 {name} 中 {only_baseline} 处{list_b}；"
        "仅在本方案中 {only_this} 处{list_t}。",
        "comparison_region": "按区域比较：{type}",
        "network": "道路网络",
        "network_text": "道路网络 {nodes} 个节点、{edges} 条路段、{components} 个连通分量（最大分量"
        "含 {share} 的节点）。",
        "network_far": "{n} 个{what}距任何道路超过 {snap} 米，按不可达处理：{ids}",
        "what_demand": "需求点",
        "what_sites": "设施点",
        "more": " 等，共 {n} 个",
        "solver": "求解与核验",
        "objective_kind": "目标类型：",
        "solver_line": "求解器 {solver}（时间上限 {limit} 秒，相对间隙要求 {mip_gap}）："
        "{status}{gap}；{label}：{value}（界 {bound}）。",
        "size_line": "需求点 {units}（合并服务范围相同者后为 {rows} 行）；"
        "候选点 {candidates}（约简后 {reduced}）。"
        "整数规划：{variables} 个变量、{constraints} 个约束、{nonzeros} 个非零元。",
        "verify_ok": "独立核验（以原始坐标逐一重算距离）：所有约束和覆盖数字均核对无误。",
        "verify_bad": "独立核验发现问题：{problems}",
        "timings": "用时（秒）：{timings}",
        "sep": "，",
        "list_sep": "、",
        "notes_sep": "；",
        "none": "无",
        "sheet_sites": "建设选址",
        "sheet_regions": "区域覆盖",
        "sheet_uncovered": "未覆盖老年人口点",
        "sheet_comparison": "方案比较",
        "sheet_settings": "设置与求解",
        "col_reach_m": "服务半径（米）",
        "col_lon": "经度（WGS84）",
        "col_lat": "纬度（WGS84）",
        "col_type_metric": "{type}：{metric}",
        "col_covered_now": "规划后是否覆盖",
        "col_nearest": "最近设施",
        "col_nearest_m": "最近距离（米）",
        "yes": "是",
        "no": "否",
        "all_regions": "合计",
        "uncovered_note": "规划后仍未被至少一类设施覆盖的老年人口点，按老年人数从多到少排列。",
        "no_comparison": "本次运行未设置 compare_with，没有可比较的方案。",
    },
    "en": {
        "date": "Date: {date}",
        "scenario": "Scenario: ",
        "version": "carecheck {version}",
        "summary": "Summary",
        "summary_type": "{type}: {opened} sites opened; elderly covered {before} → {after} "
        "({share_before} → {share_after}), {added} newly covered.",
        "summary_cost": "Total cost of the sites opened: {cost}",
        "of_budget": " of a budget of {budget}",
        "summary_status": "Solver status: {status}{gap}; independent verification: {verified}.",
        "gap_text": ", gap {gap}",
        "verified_ok": "passed",
        "verified_bad": "problems found (see “How this was computed”)",
        "figure_map": "The plan (new sites numbered in build order)",
        "figure_frontier": "Coverage against the number of sites",
        "figure": "Figure {n}. {caption}",
        "question": "The question asked",
        "objective": "objective",
        "objective_other": "Objective: {kind}.",
        "col_type": "type",
        "col_tier": "tier",
        "col_count_asked": "count asked",
        "col_count_opened": "opened",
        "col_candidates": "candidates",
        "col_existing": "existing",
        "col_alpha": "objective weight",
        "all_tiers": "(all)",
        "type_default": "(type default)",
        "constraints": "Constraints:",
        "budget": "total cost at most {budget}.",
        "no_budget": "no budget limit.",
        "region_min_sites": "at least {n} new {type} site(s) in every region.",
        "region_min_coverage": "{type} coverage at least {share} in every region.",
        "min_beds": "at least {n} new {type} beds.",
        "beds_rule": "bed need at {per_1000:g} per 1,000 elderly.",
        "sources": "Data sources",
        "col_role": "data",
        "col_file": "file",
        "col_rows_read": "rows read",
        "col_rows_kept": "rows kept",
        "col_crs": "CRS",
        "col_coords": "coordinates",
        "col_notes": "notes",
        "role_demand": "elderly (demand)",
        "role_regions": "region boundaries",
        "role_candidates": "{type}: candidates",
        "role_existing": "{type}: existing",
        "no_conversion": "none",
        "encoding": "encoding {encoding}",
        "columns": "columns: {pairs}",
        "working_crs": "Working CRS (metres): {crs}.",
        "reach": "Reach and its basis",
        "col_reach": "reach",
        "col_basis": "basis",
        "radius_m": "{value} m (straight line)",
        "network_m": "{value} m (by road)",
        "travel_min": "{value} min ({mode})",
        "mode_walk": "walk",
        "mode_drive": "drive",
        "coverage_rule": "Coverage rule: a demand point is covered when its distance to a site "
        "(straight line, or along the roads; for travel times the walk to the road included) "
        "is at most the reach of the site's tier.",
        "sites": "Sites to build, in priority order",
        "sites_type": "{type}: {n} site(s)",
        "sites_cost": ", cost {cost}",
        "sites_beds": ", {beds} beds added",
        "no_sites": "No sites opened.",
        "col_priority": "priority",
        "col_label": "map label",
        "col_id": "id",
        "col_name": "name",
        "col_action": "action",
        "col_region": "region",
        "col_cost": "cost",
        "col_beds": "beds",
        "col_marginal": "elderly newly covered",
        "col_new_covered": "not covered before, in reach",
        "col_unique": "covered only here",
        "unit_header": "{name} ({unit})",
        "sites_note": "Priority is the build order, 1 first: each site is the one that adds the "
        "most elderly once the sites before it are built. “Elderly newly covered” (the "
        "marginal gain) is what a site adds at its step: elderly covered neither by existing "
        "facilities nor by the sites before it; if the budget is cut, drop sites from the end "
        "of the list. “Not covered before, in reach” is what the site would cover alone; "
        "“covered only here” is the elderly no other site of the plan covers.",
        "total_cost": "Total cost of the sites opened: {cost}{budget}.",
        "coverage": "Coverage before → after",
        "coverage_note": "Elderly in the demand layer: {total}. Coverage is counted per facility "
        "type: one person may be covered by several types, so the types' figures do not add up.",
        "col_covered_before": "covered before",
        "col_covered_after": "covered after",
        "col_share_before": "share before",
        "col_share_after": "share after",
        "col_added": "newly covered",
        "col_elderly": "elderly",
        "objective_value": "The {label}: {value}.",
        "by_region": "By region: {type}",
        "beds": "Beds",
        "beds_need": "Bed need at {per_1000:g} per 1,000 elderly: {need}{nursing}. Beds: {before} "
        "→ {after} ({per_before} → {per_after} per 1,000 elderly). Need served by beds within "
        "reach (no site beyond its beds): {served_before} → {served_after}; unmet after the "
        "plan: {unmet}.",
        "nursing": ", of which {n} nursing beds ({share})",
        "col_bed_need": "bed need",
        "col_per_1000_before": "beds per 1,000 before",
        "col_per_1000_after": "beds per 1,000 after",
        "col_served_before": "need served before",
        "col_served_after": "need served after",
        "col_unmet": "unmet after",
        "beds_no_region": "{n} bed site(s) have no region column and are left out of the "
        "per-region beds.",
        "checks": "What the plan cannot change",
        "idle": "{type}: {n} opened site(s) add no one — everyone they reach is covered by "
        "existing facilities or the sites before them: {ids}. The count (",
        "idle_fix": ") forced them open; ",
        "idle_end": " instead would leave them out.",
        "no_idle": "{type}: every site opened adds elderly.",
        "unreachable": "{type}: {weight} elderly in {units} demand point(s) are out of reach of "
        "every candidate and existing facility: no plan of these candidates can cover "
        "them{regions}.",
        "unreachable_regions": " ({regions})",
        "no_unreachable": "{type}: every elderly person is within reach of a candidate or an "
        "existing facility.",
        "comparison": "Against scenario {name}",
        "comparison_intro": "What this scenario's constraints change compared with {name}"
        "{title}: elderly covered after each plan, per type, and the difference.",
        "col_baseline": "{name}: covered",
        "col_this": "this scenario: covered",
        "col_difference": "difference (elderly)",
        "col_baseline_share": "{name}: share",
        "col_this_share": "this scenario: share",
        "comparison_cost": "Cost: {before} → {after}. Objective: {obj_before} → {obj_after}.",
        "comparison_sites": "Sites in common: {common}; only in {name}: {only_baseline}{list_b}; "
        "only here: {only_this}{list_t}.",
        "comparison_region": "By region against the baseline: {type}",
        "network": "Road network",
        "network_text": "{nodes} nodes, {edges} segments, {components} connected component(s) "
        "(the largest holds {share} of the nodes).",
        "network_far": "{n} {what} lie more than {snap} m from any road and are treated as "
        "unreachable: {ids}",
        "what_demand": "demand units",
        "what_sites": "sites",
        "more": " … and {n} in all",
        "solver": "How this was computed",
        "objective_kind": "Objective kind: ",
        "solver_line": "Solver {solver} (time limit {limit} s, relative gap {mip_gap}): "
        "{status}{gap}; {label}: {value} (bound {bound}).",
        "size_line": "Demand units: {units} ({rows} model rows after merging identical reach "
        "sets); candidates: {candidates} ({reduced} after reductions). MILP: {variables} "
        "variables, {constraints} constraints, {nonzeros} nonzeros.",
        "verify_ok": "Verified independently by brute-force distances from the raw coordinates: "
        "all constraints and coverage figures check out.",
        "verify_bad": "Independent verification found PROBLEMS: {problems}",
        "timings": "Timings (s): {timings}",
        "sep": ", ",
        "list_sep": ", ",
        "notes_sep": "; ",
        "none": "none",
        "sheet_sites": "Sites",
        "sheet_regions": "Regions",
        "sheet_uncovered": "Not covered",
        "sheet_comparison": "Comparison",
        "sheet_settings": "Settings and solver",
        "col_reach_m": "reach (m)",
        "col_lon": "longitude (WGS84)",
        "col_lat": "latitude (WGS84)",
        "col_type_metric": "{type}: {metric}",
        "col_covered_now": "covered after",
        "col_nearest": "nearest site",
        "col_nearest_m": "nearest (m)",
        "yes": "yes",
        "no": "no",
        "all_regions": "total",
        "uncovered_note": "Demand units that at least one facility type still does not cover "
        "after the plan, largest first.",
        "no_comparison": "This run has no compare_with: there is no plan to compare with.",
    },
}


# --------------------------------------------------------------------------- the blocks


@dataclass(frozen=True)
class Run:
    """A piece of a paragraph: plain text, ``strong`` (bold) or ``code`` (a scenario key)."""

    text: str
    style: str = ""


@dataclass(frozen=True)
class Heading:
    """A heading; level 1 is the report's title."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of runs."""

    runs: tuple[Run, ...]

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


@dataclass(frozen=True)
class Bullets:
    """A bulleted list; each item a paragraph."""

    items: tuple[Paragraph, ...]


@dataclass(frozen=True)
class Table:
    """A table of raw values; ``formats[k]`` is column k's number format (None: text)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    formats: tuple[str | None, ...]

    def cell(self, row: int, column: int) -> str:
        """The cell as both renderers print it."""
        return cell_text(self.rows[row][column], self.formats[column])


@dataclass(frozen=True)
class Figure:
    """A picture of the output folder (``path``) with its caption."""

    path: Path
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


def cell_text(value: Any, number_format: str | None) -> str:
    """A table value as printed: numbers by ``number_format``; a missing value as a dash."""
    if value is None or value == "":
        return DASH
    if number_format is None:
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return format(number, number_format) if math.isfinite(number) else DASH


def _paragraph(*parts: str | Run) -> Paragraph:
    return Paragraph(tuple(p if isinstance(p, Run) else Run(p) for p in parts))


def _n(value: Any, number_format: str = COUNT) -> str:
    return cell_text(value, number_format)


def _share(part: float | None, total: float | None) -> float | None:
    if part is None or not total:
        return None
    return float(part) / float(total)


@dataclass(frozen=True)
class _Context:
    """What every section needs: the document, its folder, language and money unit."""

    document: dict
    folder: Path
    lang: str
    unit: str | None

    def t(self, key: str, **values: Any) -> str:
        return TEXT[self.lang][key].format(**values)

    def name(self, kind: str, value: Any) -> str:
        """Display name of a data value (type, tier, action, status); raw when unknown."""
        if value is None or value == "":
            return DASH
        return LABELS.get(self.lang, LABELS["zh"]).get(kind, {}).get(str(value), str(value))

    def money(self, value: float | None) -> str:
        return money(value, self.unit, self.lang) if value is not None else DASH

    def with_unit(self, key: str) -> str:
        name = self.t(key)
        return self.t("unit_header", name=name, unit=self.unit) if self.unit else name

    @property
    def types(self) -> list[str]:
        return list(self.document["types"])

    @cached_property
    def map_labels(self) -> dict[tuple[str, str], str]:
        """Each selected site's label on the maps, by (type, id)."""
        return site_labels(self.document)

    @property
    def total(self) -> float:
        return float(self.document["coverage"]["demand_total"])


def report_blocks(document: dict, folder: Path) -> list[Block]:
    """The report's content as plain blocks, in the result's language.

    Parameters
    ----------
    document
        A ``result.json`` document.
    folder
        The run's output folder: ``map.png`` and ``frontier.png`` there become figures, and
        ``demand_coverage.csv`` gives the farthest demand point of a p-median plan.

    Raises
    ------
    DataError
        When the document lacks what a report needs.
    """
    lang = document.get("lang") or "zh"
    context = _Context(
        document, Path(folder), lang if lang in TEXT else "zh", document.get("cost_unit")
    )
    sections = (
        _title,
        _summary,
        _question,
        _sources,
        _reach,
        _sites,
        _coverage,
        _beds,
        _checks,
        _comparison,
        _network,
        _frontier,
        _solver,
    )
    blocks: list[Block] = []
    try:
        for section in sections:
            blocks += section(context)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(
            f"{Path(folder) / 'result.json'}: not the content a report needs ({exc!r}); "
            "run `carecheck run SCENARIO` again to rewrite it"
        ) from None
    figures = 0
    numbered: list[Block] = []
    for block in blocks:  # figures are numbered in the order they appear
        if isinstance(block, Figure):
            figures += 1
            block = Figure(block.path, context.t("figure", n=figures, caption=block.caption))
        numbered.append(block)
    return numbered


def _title(c: _Context) -> list[Block]:
    d = c.document
    meta: list[str | Run] = []
    if d.get("created"):
        meta += [c.t("date", date=d["created"]), c.t("sep")]
    meta += [c.t("scenario"), Run(str(d["scenario"]), "code")]
    if d.get("carecheck_version"):
        meta += [c.t("sep"), c.t("version", version=d["carecheck_version"])]
    return [Heading(1, str(d.get("title") or d["scenario"])), _paragraph(*meta)]


def _type_summary(c: _Context, name: str) -> Paragraph:
    block = c.document["coverage"]["types"][name]
    before, after = block["covered_before"], block["covered_after"]
    opened = sum(1 for s in c.document["selected"] if s["type"] == name)
    return _paragraph(
        c.t(
            "summary_type",
            type=c.name("type", name),
            opened=opened,
            before=_n(before),
            after=_n(after),
            share_before=_n(_share(before, c.total), SHARE),
            share_after=_n(_share(after, c.total), SHARE),
            added=_n(after - before),
        )
    )


def _summary(c: _Context) -> list[Block]:
    d = c.document
    items = [_type_summary(c, name) for name in c.types if name in d["coverage"]["types"]]
    budget = d.get("budget")
    cost = c.t("summary_cost", cost=c.money(d.get("total_cost")))
    cost += c.t("of_budget", budget=c.money(budget)) if budget is not None else ""
    items.append(_paragraph(cost + ("。" if c.lang == "zh" else ".")))
    items.append(_objective_paragraph(c))
    gap = d.get("gap")
    verified = (d.get("verification") or {}).get("ok")
    items.append(
        _paragraph(
            c.t(
                "summary_status",
                status=c.name("status", d.get("status")),
                gap=c.t("gap_text", gap=f"{gap:.2%}") if gap is not None else "",
                verified=c.t("verified_ok" if verified else "verified_bad"),
            )
        )
    )
    blocks: list[Block] = [Heading(2, c.t("summary")), Bullets(tuple(items))]
    if (c.folder / "map.png").is_file():
        blocks.append(Figure(c.folder / "map.png", c.t("figure_map")))
    return blocks


def _objective(c: _Context) -> Objective | None:
    """The run's objective (None: a kind this installation does not know)."""
    from carecheck import objectives

    kind = str(c.document.get("objective_kind"))
    return objectives.get(kind) if kind in objectives.kinds() else None


def _objective_label(c: _Context) -> str:
    objective = _objective(c)
    settings = c.document.get("objective_settings") or {}
    return objective.value_label(settings, c.lang)[0] if objective else c.t("objective")


def _objective_number(c: _Context, value: float | None, number_format: str = COUNT) -> str:
    objective = _objective(c)
    settings = c.document.get("objective_settings") or {}
    if objective is not None and objective.value_label(settings, c.lang)[1]:
        return c.money(value)
    return _n(value, number_format)


def _objective_paragraph(c: _Context) -> Paragraph:
    return _paragraph(
        c.t(
            "objective_value",
            label=_objective_label(c),
            value=_objective_number(c, c.document.get("objective")),
        )
    )


def _count_asked(asked: dict | None) -> str:
    asked = asked or {}
    if asked.get("count") is not None:
        return f"{asked['count']:,}"
    low, high = asked.get("min_count"), asked.get("max_count")
    if low is not None and high is not None:
        return f"{low:,}–{high:,}"
    if low is not None:
        return f"≥ {low:,}"
    return f"≤ {high:,}" if high is not None else DASH


def _question(c: _Context) -> list[Block]:
    d = c.document
    objective = _objective(c)
    intro = (
        objective.question(d.get("objective_settings") or {}, c.lang)
        if objective
        else c.t("objective_other", kind=d.get("objective_kind"))
    )
    types = d["types"]
    weighted = any(float(types[t].get("objective_weight") or 1.0) != 1.0 for t in types)
    rows = []
    for name, spec in types.items():
        tiers = spec.get("tier_count_asked") or {}
        rows.append(
            (
                c.name("type", name),
                c.t("all_tiers") if tiers else DASH,
                _count_asked(spec.get("count_asked")),
                spec.get("count_opened"),
                spec.get("candidates"),
                spec.get("existing"),
                spec.get("objective_weight"),
            )
        )
        opened = spec.get("tier_count_opened") or {}
        rows += [
            (
                c.name("type", name),
                c.name("tier", tier),
                _count_asked(asked),
                opened.get(tier),
                None,
                None,
                None,
            )
            for tier, asked in tiers.items()
        ]
    headers = ["col_type", "col_tier", "col_count_asked", "col_count_opened"]
    headers += ["col_candidates", "col_existing", "col_alpha"]
    formats = (None, None, None, COUNT, COUNT, COUNT, "g")
    keep = 7 if weighted else 6
    table = Table(
        tuple(c.t(h) for h in headers[:keep]),
        tuple(r[:keep] for r in rows),
        formats[:keep],
    )
    return [
        Heading(2, c.t("question")),
        _paragraph(intro),
        table,
        _paragraph(c.t("constraints")),
        Bullets(tuple(_paragraph(line) for line in _constraint_lines(c))),
    ]


def _constraint_lines(c: _Context) -> list[str]:
    d = c.document
    constraints = d.get("constraints") or {}
    budget = d.get("budget")
    lines = [c.t("budget", budget=c.money(budget)) if budget is not None else c.t("no_budget")]
    for name, n in (constraints.get("region_min_sites") or {}).items():
        lines.append(c.t("region_min_sites", n=n, type=c.name("type", name)))
    for name, share in (constraints.get("region_min_coverage") or {}).items():
        lines.append(c.t("region_min_coverage", share=f"{share:.0%}", type=c.name("type", name)))
    for name, n in (constraints.get("min_beds") or {}).items():
        lines.append(c.t("min_beds", n=_n(n), type=c.name("type", name)))
    beds = d.get("beds")
    if beds:
        lines.append(c.t("beds_rule", per_1000=beds["per_1000"]))
    return lines


def _role(c: _Context, role: str) -> str:
    if role in ("demand", "regions"):
        return c.t(f"role_{role}")
    parts = role.split(".")
    if len(parts) == 3 and parts[0] == "facilities" and parts[2] in ("candidates", "existing"):
        return c.t(f"role_{parts[2]}", type=c.name("type", parts[1]))
    return role


_COORDS = {"gcj02": "GCJ-02", "bd09": "BD-09", "wgs84": "WGS84"}


def _source_row(c: _Context, role: str, source: dict) -> tuple:
    place = Path(str(source.get("path") or "")).name
    inner = [str(source[k]) for k in ("sheet", "layer") if source.get(k)]
    if inner:
        place += f" ({', '.join(inner)})" if c.lang == "en" else f"（{'、'.join(inner)}）"
    coords = source.get("coords") or "wgs84"
    converted = source.get("converted_to")
    conversion = (
        f"{_COORDS.get(coords, coords)} → {_COORDS.get(converted, converted)}"
        if converted
        else c.t("no_conversion")
    )
    notes = [c.t("encoding", encoding=source["encoding"])] if source.get("encoding") else []
    notes += [str(note) for note in source.get("notes") or []]
    columns = source.get("columns") or {}
    if columns:
        ui = LABELS.get(c.lang, LABELS["zh"])["ui"]
        pairs = c.t("list_sep").join(f"{ui.get(k, k)} = {v}" for k, v in columns.items())
        notes.append(c.t("columns", pairs=pairs))
    return (
        _role(c, role),
        place,
        source.get("rows_read"),
        source.get("rows_kept"),
        source.get("crs"),
        conversion,
        c.t("notes_sep").join(notes) or None,
    )


def _sources(c: _Context) -> list[Block]:
    layers = c.document.get("layers") or {}
    blocks: list[Block] = [Heading(2, c.t("sources"))]
    if layers:
        headers = ["col_role", "col_file", "col_rows_read", "col_rows_kept", "col_crs"]
        headers += ["col_coords", "col_notes"]
        blocks.append(
            Table(
                tuple(c.t(h) for h in headers),
                tuple(_source_row(c, role, source) for role, source in layers.items()),
                (None, None, COUNT, COUNT, None, None, None),
            )
        )
    if c.document.get("crs"):
        blocks.append(_paragraph(c.t("working_crs", crs=c.document["crs"])))
    return blocks


def reach_text(reach: dict | None, lang: str = "zh") -> str:
    """A reach (``{"kind", "value", "mode"}`` of result.json) as the report prints it."""
    if not reach:
        return DASH
    kind, value = reach.get("kind"), float(reach["value"])
    if kind == "travel_min":
        mode = reach.get("mode") or "walk"
        key = f"mode_{mode}"
        shown = TEXT[lang].get(key, mode)
        return TEXT[lang]["travel_min"].format(value=f"{value:g}", mode=shown)
    if kind in ("radius_m", "network_m"):
        return TEXT[lang][kind].format(value=f"{value:,.0f}")
    return f"{kind} {value:g}"


def _reach(c: _Context) -> list[Block]:
    rows = []
    for name, spec in c.document["types"].items():
        tiers = spec.get("tier_reach") or {}
        basis = spec.get("tier_basis") or {}
        if spec.get("reach") or not tiers:
            tier = c.t("type_default") if tiers else DASH
            rows.append(
                (
                    c.name("type", name),
                    tier,
                    reach_text(spec.get("reach"), c.lang),
                    spec.get("basis"),
                )
            )
        rows += [
            (
                c.name("type", name),
                c.name("tier", tier),
                reach_text(reach, c.lang),
                basis.get(tier) or spec.get("basis"),
            )
            for tier, reach in tiers.items()
        ]
    headers = tuple(c.t(h) for h in ("col_type", "col_tier", "col_reach", "col_basis"))
    return [
        Heading(2, c.t("reach")),
        Table(headers, tuple(rows), (None,) * 4),
        _paragraph(c.t("coverage_rule")),
    ]


# (column key, selected[*] key, number format); a column with no value in a type is left out
_SITE_COLUMNS = (
    ("col_priority", "priority", ".0f"),
    ("col_id", "id", None),
    ("col_name", "name", None),
    ("col_tier", "tier", None),
    ("col_action", "action", None),
    ("col_region", "region", None),
    ("col_cost", "cost", MONEY),
    ("col_beds", "beds", COUNT),
    ("col_marginal", "marginal_weight", COUNT),
    ("col_new_covered", "new_covered_weight", COUNT),
    ("col_unique", "unique_covered_weight", COUNT),
)
_ALWAYS = {"priority", "id", "marginal_weight"}
_LABEL_COLUMN = ("col_label", "label", None)  # the site's label on the maps (labels.site_labels)


def sites_in_order(document: dict, type_name: str) -> list[dict]:
    """The type's selected sites in build order (priority, then id)."""
    sites = [s for s in document["selected"] if s["type"] == type_name]
    return sorted(sites, key=lambda s: (s.get("priority") or math.inf, str(s["id"])))


def _site_value(c: _Context, site: dict, key: str) -> Any:
    if key == "label":
        return c.map_labels.get((str(site["type"]), str(site["id"])))
    value = site.get(key)
    if key in ("tier", "action") and value not in (None, ""):
        return c.name(key, value)
    if key == "priority" and value is not None:
        return int(value)
    return value


def _site_table(c: _Context, sites: list[dict]) -> Table:
    columns = [
        column
        for column in _SITE_COLUMNS
        if column[1] in _ALWAYS or any(s.get(column[1]) not in (None, "") for s in sites)
    ]
    if len(c.types) > 1:  # the label on the maps (A3) differs from the order (3)
        columns.insert(2, _LABEL_COLUMN)
    headers = tuple(c.with_unit(key) if field == "cost" else c.t(key) for key, field, _ in columns)
    rows = tuple(tuple(_site_value(c, s, field) for _, field, _ in columns) for s in sites)
    return Table(headers, rows, tuple(f for _, _, f in columns))


def _sum(sites: list[dict], key: str) -> float:
    return sum(float(s[key]) for s in sites if isinstance(s.get(key), int | float))


def _sites(c: _Context) -> list[Block]:
    d = c.document
    blocks: list[Block] = [Heading(2, c.t("sites"))]
    for name in c.types:
        sites = sites_in_order(d, name)
        title = c.t("sites_type", type=c.name("type", name), n=len(sites))
        cost, beds = _sum(sites, "cost"), _sum(sites, "beds")
        title += c.t("sites_cost", cost=c.money(cost)) if cost else ""
        title += c.t("sites_beds", beds=_n(beds)) if beds else ""
        blocks.append(Heading(3, title))
        blocks.append(_site_table(c, sites) if sites else _paragraph(c.t("no_sites")))
    blocks.append(_paragraph(c.t("sites_note")))
    budget = d.get("budget")
    blocks.append(
        _paragraph(
            c.t(
                "total_cost",
                cost=c.money(d.get("total_cost")),
                budget=c.t("of_budget", budget=c.money(budget)) if budget is not None else "",
            )
        )
    )
    return blocks


def _coverage_row(label: str, total: float, block: dict) -> tuple:
    before, after = block["covered_before"], block["covered_after"]
    return (
        label,
        total,
        before,
        after,
        _share(before, total),
        _share(after, total),
        after - before,
    )


def _coverage_headers(c: _Context, first: str) -> tuple[str, ...]:
    keys = ["col_elderly", "col_covered_before", "col_covered_after", "col_share_before"]
    keys += ["col_share_after", "col_added"]
    return (c.t(first), *(c.t(k) for k in keys))


_COVERAGE_FORMATS = (None, COUNT, COUNT, COUNT, SHARE, SHARE, COUNT)


def _coverage(c: _Context) -> list[Block]:
    coverage = c.document["coverage"]
    names = [n for n in c.types if n in coverage["types"]]
    rows = tuple(_coverage_row(c.name("type", n), c.total, coverage["types"][n]) for n in names)
    blocks: list[Block] = [
        Heading(2, c.t("coverage")),
        _paragraph(c.t("coverage_note", total=_n(c.total))),
        Table(_coverage_headers(c, "col_type"), rows, _COVERAGE_FORMATS),
        _objective_paragraph(c),
    ]
    blocks += _mean_distance(c)
    for name in names if coverage.get("by_region") else ():
        region_rows = tuple(
            _coverage_row(str(b["region"]), b["demand_total"], b["types"][name])
            for b in coverage["by_region"]
            if name in b["types"]
        )
        blocks.append(Heading(3, c.t("by_region", type=c.name("type", name))))
        blocks.append(Table(_coverage_headers(c, "col_region"), region_rows, _COVERAGE_FORMATS))
    return blocks


def _mean_distance(c: _Context) -> list[Block]:
    """The objective's own sentences (e.g. the mean distance of a p-median plan)."""
    objective = _objective(c)
    notes = objective.report_notes(c.document, c.folder, c.lang) if objective else []
    return [_paragraph(note) for note in notes]


def _beds(c: _Context) -> list[Block]:
    beds = c.document.get("beds")
    if not beds:
        return []
    nursing = (
        c.t("nursing", n=_n(beds["nursing_need"]), share=f"{beds['nursing_share']:.0%}")
        if beds.get("nursing_need") is not None
        else ""
    )
    text = c.t(
        "beds_need",
        per_1000=beds["per_1000"],
        need=_n(beds["need"]),
        nursing=nursing,
        before=_n(beds["beds_before"]),
        after=_n(beds["beds_after"]),
        per_before=_n(beds["beds_per_1000_before"], DECIMAL),
        per_after=_n(beds["beds_per_1000_after"], DECIMAL),
        served_before=_n(beds["served_before"]),
        served_after=_n(beds["served_after"]),
        unmet=_n(beds["unmet_after"]),
    )
    blocks: list[Block] = [Heading(2, c.t("beds")), _paragraph(text)]
    if beds.get("by_region"):
        keys = ["col_region", "col_elderly", "col_bed_need", "col_per_1000_before"]
        keys += ["col_per_1000_after", "col_served_before", "col_served_after", "col_unmet"]
        rows = tuple(
            (
                str(b["region"]),
                b["elderly"],
                b["need"],
                b["beds_per_1000_before"],
                b["beds_per_1000_after"],
                b["served_before"],
                b["served_after"],
                b["need"] - b["served_after"],
            )
            for b in beds["by_region"]
        )
        formats = (None, COUNT, COUNT, DECIMAL, DECIMAL, COUNT, COUNT, COUNT)
        blocks.append(Table(tuple(c.t(k) for k in keys), rows, formats))
    if beds.get("sites_without_region"):
        blocks.append(_paragraph(c.t("beds_no_region", n=beds["sites_without_region"])))
    return blocks


def _idle_item(c: _Context, name: str, ids: list[str]) -> Paragraph:
    if not ids:
        return _paragraph(c.t("no_idle", type=c.name("type", name)))
    shown = c.t("list_sep").join(map(str, ids))
    return _paragraph(
        c.t("idle", type=c.name("type", name), n=len(ids), ids=shown),
        Run("count", "code"),
        c.t("idle_fix"),
        Run("max_count", "code"),
        c.t("idle_end"),
    )


def _unreachable_item(c: _Context, name: str, lost: dict) -> Paragraph:
    if not lost.get("weight"):
        return _paragraph(c.t("no_unreachable", type=c.name("type", name)))
    regions = c.t("list_sep").join(f"{r} {_n(w)}" for r, w in lost.get("by_region", {}).items())
    return _paragraph(
        c.t(
            "unreachable",
            type=c.name("type", name),
            weight=_n(lost["weight"]),
            units=_n(lost.get("units")),
            regions=c.t("unreachable_regions", regions=regions) if regions else "",
        )
    )


def _checks(c: _Context) -> list[Block]:
    checks = c.document.get("plan_checks") or {}
    idle = checks.get("idle_sites") or {}
    unreachable = checks.get("unreachable") or {}
    items = []
    for name in [*idle, *(t for t in unreachable if t not in idle)]:  # per type
        items += [_idle_item(c, name, idle[name])] if name in idle else []
        items += [_unreachable_item(c, name, unreachable[name])] if name in unreachable else []
    if not items:
        return []
    return [Heading(2, c.t("checks")), Bullets(tuple(items))]


def _few(c: _Context, ids: list[str], limit: int = 30) -> str:
    shown = c.t("list_sep").join(map(str, ids[:limit]))
    return shown + (c.t("more", n=len(ids)) if len(ids) > limit else "")


def _site_keys(c: _Context, keys: list[str], limit: int = 30) -> str:
    """``type:id`` keys of :func:`carecheck.report.compare_documents` as "养老机构 C0028"."""
    names = []
    for key in keys[:limit]:
        type_name, _, site = str(key).partition(":")
        names.append(f"{c.name('type', type_name)} {site}" if site else type_name)
    more = c.t("more", n=len(keys)) if len(keys) > limit else ""
    return c.t("list_sep").join(names) + more


def _comparison_types(c: _Context, comparison: dict, base: str) -> Table:
    total = c.total
    rows = tuple(
        (
            c.name("type", t),
            v["baseline"],
            v["this"],
            v["this"] - v["baseline"],
            _share(v["baseline"], total),
            _share(v["this"], total),
        )
        for t, v in comparison["types"].items()
    )
    headers = (
        c.t("col_type"),
        c.t("col_baseline", name=base),
        c.t("col_this"),
        c.t("col_difference"),
        c.t("col_baseline_share", name=base),
        c.t("col_this_share"),
    )
    return Table(headers, rows, (None, COUNT, COUNT, SIGNED, SHARE, SHARE))


def _comparison_regions(c: _Context, comparison: dict, base: str) -> list[Block]:
    blocks: list[Block] = []
    headers = (
        c.t("col_region"),
        c.t("col_elderly"),
        c.t("col_baseline_share", name=base),
        c.t("col_this_share"),
        c.t("col_difference"),
    )
    for t in comparison["types"] if comparison.get("by_region") else ():
        rows = tuple(
            (
                str(b["region"]),
                b["demand_total"],
                _share(b["types"][t]["baseline"], b["demand_total"]),
                _share(b["types"][t]["this"], b["demand_total"]),
                b["types"][t]["this"] - b["types"][t]["baseline"],
            )
            for b in comparison["by_region"]
            if t in b["types"]
        )
        blocks.append(Heading(3, c.t("comparison_region", type=c.name("type", t))))
        blocks.append(Table(headers, rows, (None, COUNT, SHARE, SHARE, SIGNED)))
    return blocks


def _comparison(c: _Context) -> list[Block]:
    comparison = c.document.get("comparison")
    if not comparison:
        return []
    base = str(comparison["baseline"])
    title = comparison.get("baseline_title")
    shown_title = (f"（{title}）" if c.lang == "zh" else f" ({title})") if title else ""
    cost, objective, sites = comparison["total_cost"], comparison["objective"], comparison["sites"]

    def listed(ids: list[str]) -> str:
        if not ids:
            return ""
        listed = _site_keys(c, ids)
        return f"（{listed}）" if c.lang == "zh" else f" ({listed})"

    return [
        Heading(2, c.t("comparison", name=base)),
        _paragraph(c.t("comparison_intro", name=base, title=shown_title)),
        _comparison_types(c, comparison, base),
        _paragraph(
            c.t(
                "comparison_cost",
                before=c.money(cost["baseline"]),
                after=c.money(cost["this"]),
                obj_before=_n(objective["baseline"]),
                obj_after=_n(objective["this"]),
            )
        ),
        _paragraph(
            c.t(
                "comparison_sites",
                name=base,
                common=sites["common"],
                only_baseline=len(sites["only_baseline"]),
                list_b=listed(sites["only_baseline"]),
                only_this=len(sites["only_this"]),
                list_t=listed(sites["only_this"]),
            )
        ),
        *_comparison_regions(c, comparison, base),
    ]


def _network(c: _Context) -> list[Block]:
    network = c.document.get("network")
    if not network:
        return []
    blocks: list[Block] = [
        Heading(2, c.t("network")),
        _paragraph(
            c.t(
                "network_text",
                nodes=_n(network["nodes"]),
                edges=_n(network["edges"]),
                components=_n(network["components"]),
                share=f"{network['largest_component_share']:.1%}",
            )
        ),
    ]
    far = [
        _paragraph(
            c.t(
                "network_far",
                n=len(network[key]),
                what=c.t(what),
                snap=_n(network["max_snap_m"]),
                ids=_few(c, network[key], 20),
            )
        )
        for key, what in (
            ("unreachable_demand", "what_demand"),
            ("unreachable_sites", "what_sites"),
        )
        if network.get(key)
    ]
    return blocks + ([Bullets(tuple(far))] if far else [])


def _frontier(c: _Context) -> list[Block]:
    path = c.folder / "frontier.png"
    return [Figure(path, c.t("figure_frontier"))] if path.is_file() else []


def _solver(c: _Context) -> list[Block]:
    d = c.document
    settings = d.get("solver_settings") or {}
    gap = d.get("gap")
    items = [
        c.t(
            "solver_line",
            solver=d.get("solver") or DASH,
            limit=f"{settings['time_limit_s']:g}" if settings.get("time_limit_s") else DASH,
            mip_gap=f"{settings['mip_gap']:g}" if settings.get("mip_gap") is not None else DASH,
            status=c.name("status", d.get("status")),
            gap=c.t("gap_text", gap=f"{gap:.4%}") if gap is not None else "",
            label=_objective_label(c),
            value=_objective_number(c, d.get("objective"), DECIMAL),
            bound=_objective_number(c, d.get("bound"), DECIMAL),
        )
    ]
    size = d.get("model_size") or {}
    if size:
        items.append(
            c.t(
                "size_line",
                units=_n(size.get("demand_units")),
                rows=_n(size.get("demand_rows_after_reduction")),
                candidates=_n(size.get("candidates")),
                reduced=_n(size.get("candidates_after_reduction")),
                variables=_n(size.get("variables")),
                constraints=_n(size.get("constraints")),
                nonzeros=_n(size.get("nonzeros")),
            )
        )
    verification = d.get("verification") or {}
    problems = "; ".join(map(str, verification.get("problems") or [])) or DASH
    items.append(
        c.t("verify_ok") if verification.get("ok") else c.t("verify_bad", problems=problems)
    )
    timings = d.get("timings") or {}
    if timings:
        shown = c.t("sep").join(f"{k} {v:.2f}" for k, v in timings.items())
        items.append(c.t("timings", timings=shown))
    kind = _paragraph(c.t("objective_kind"), Run(str(d.get("objective_kind")), "code"))
    return [Heading(2, c.t("solver")), Bullets((kind, *(_paragraph(i) for i in items)))]


# --------------------------------------------------------------------------- the workbook's content


@dataclass(frozen=True)
class Sheet:
    """One sheet of ``plan.xlsx``: its name (in the result's language) and its blocks."""

    key: str
    name: str
    blocks: tuple[Block, ...]


def workbook_sheets(document: dict, folder: Path) -> list[Sheet]:
    """The content of ``plan.xlsx`` as sheets of blocks, in the result's language.

    ``sites`` (the sites to build, every type, in build order), ``regions`` (coverage per
    region and type), ``uncovered`` (the demand units still not covered by some type, largest
    first), ``comparison`` (against ``compare_with``) and ``settings`` (the question, the data
    sources, the reach and how it was computed: the report's own sections).
    """
    lang = document.get("lang") or "zh"
    c = _Context(document, Path(folder), lang if lang in TEXT else "zh", document.get("cost_unit"))
    try:
        sheets = [
            Sheet("sites", c.t("sheet_sites"), (_all_sites(c),)),
            Sheet("regions", c.t("sheet_regions"), (_region_table(c),)),
            Sheet("uncovered", c.t("sheet_uncovered"), tuple(_uncovered(c))),
            Sheet("comparison", c.t("sheet_comparison"), tuple(_comparison_sheet(c))),
            Sheet(
                "settings",
                c.t("sheet_settings"),
                tuple(_question(c) + _sources(c) + _reach(c) + _solver(c)),
            ),
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(
            f"{Path(folder) / 'result.json'}: not the content a workbook needs ({exc!r}); "
            "run `carecheck run SCENARIO` again to rewrite it"
        ) from None
    return sheets


def _source_column(c: _Context, key: str, roles: list[str]) -> str | None:
    """The planner's own column behind carecheck's ``key`` when every layer of ``roles``
    that has one names the same (村名 for ``name``), else None."""
    layers = c.document.get("layers") or {}
    found = {
        str(cols[key])
        for r in roles
        if (cols := (layers.get(r) or {}).get("columns")) and cols.get(key)
    }
    return found.pop() if len(found) == 1 else None


def _planner(header: str, source: str | None) -> str:
    """A header with the planner's own column name on its second line."""
    return f"{header}\n{source}" if source and source != header else header


_WORKBOOK_SITE_COLUMNS = (
    ("col_type", "type", None),
    *_SITE_COLUMNS[:2],
    _LABEL_COLUMN,
    *_SITE_COLUMNS[2:],
    ("col_reach_m", "radius_m", COUNT),
    ("col_lon", "lon", ".6f"),
    ("col_lat", "lat", ".6f"),
)


def _all_sites(c: _Context) -> Table:
    roles = [f"facilities.{t}.candidates" for t in c.types]
    sites = [s for t in c.types for s in sites_in_order(c.document, t)]
    headers, fields, formats = [], [], []
    for key, field, number_format in _WORKBOOK_SITE_COLUMNS:
        header = c.with_unit(key) if field == "cost" else c.t(key)
        headers.append(_planner(header, _source_column(c, field, roles)))
        fields.append(field)
        formats.append(number_format)
    rows = tuple(
        tuple(c.name("type", s["type"]) if f == "type" else _site_value(c, s, f) for f in fields)
        for s in sites
    )
    return Table(tuple(headers), rows, tuple(formats))


def _region_table(c: _Context) -> Table:
    coverage = c.document["coverage"]
    names = [n for n in c.types if n in coverage["types"]]
    metrics = ("col_covered_before", "col_covered_after", "col_share_before", "col_share_after")
    headers = [c.t("col_region"), c.t("col_elderly")]
    for n in names:
        headers += [c.t("col_type_metric", type=c.name("type", n), metric=c.t(m)) for m in metrics]

    def row(label: str, total: float, types: dict) -> tuple:
        values: list[Any] = [label, total]
        for n in names:
            before, after = types[n]["covered_before"], types[n]["covered_after"]
            values += [before, after, _share(before, total), _share(after, total)]
        return tuple(values)

    rows = [
        row(str(b["region"]), b["demand_total"], b["types"])
        for b in coverage.get("by_region") or []
    ]
    rows.append(row(c.t("all_regions"), c.total, coverage["types"]))
    formats = (None, COUNT, *((COUNT, COUNT, SHARE, SHARE) * len(names)))
    return Table(tuple(headers), tuple(rows), formats)


def _uncovered(c: _Context) -> list[Block]:
    import pandas as pd

    from carecheck.textsafe import read_demand

    frame = read_demand(c.folder)
    types = [t for t in c.types if f"covered_after_{t}" in frame.columns]
    covered = {
        t: pd.to_numeric(frame[f"covered_after_{t}"], errors="coerce").fillna(0) > 0 for t in types
    }
    weight = pd.to_numeric(frame["weight"], errors="coerce")
    missing = (
        ~pd.concat(covered, axis=1).all(axis=1) if types else pd.Series(False, index=frame.index)
    )
    order = frame.index[missing].to_numpy()
    order = order[pd.Series(-weight[missing].to_numpy()).argsort(kind="stable").to_numpy()]
    roles = ["demand"]
    columns: list[tuple[str, Any, str | None]] = [
        (_planner(c.t("col_id"), _source_column(c, "id", roles)), frame["demand_id"], None),
    ]
    for key, column in (("col_name", "name"), ("col_region", "region")):
        if column in frame.columns:
            columns.append(
                (_planner(c.t(key), _source_column(c, column, roles)), frame[column], None)
            )
    columns.append(
        (_planner(c.t("col_elderly"), _source_column(c, "weight", roles)), weight, COUNT)
    )
    for t in types:
        label = c.name("type", t)
        shown = covered[t].map({True: c.t("yes"), False: c.t("no")})
        columns.append(
            (c.t("col_type_metric", type=label, metric=c.t("col_covered_now")), shown, None)
        )
        for key, column, number_format in (
            ("col_nearest", f"nearest_{t}_id", None),
            ("col_nearest_m", f"nearest_{t}_m", COUNT),
        ):
            if column in frame.columns:
                values = (
                    frame[column]
                    if number_format is None
                    else pd.to_numeric(frame[column], errors="coerce")
                )
                columns.append(
                    (c.t("col_type_metric", type=label, metric=c.t(key)), values, number_format)
                )
    data = [col.to_numpy(dtype=object)[order] for _, col, _ in columns]
    rows = tuple(zip(*(_cells(d) for d in data), strict=True)) if len(order) else ()
    table = Table(tuple(h for h, _, _ in columns), rows, tuple(f for _, _, f in columns))
    return [_paragraph(c.t("uncovered_note")), table]


def _cells(values: Any) -> list[Any]:
    """Cells of a column: NaN and empty text as None."""
    out: list[Any] = []
    for v in values:
        if v is None or v == "" or (isinstance(v, float) and not math.isfinite(v)):
            out.append(None)
        else:
            out.append(v)
    return out


def _comparison_sheet(c: _Context) -> list[Block]:
    blocks = _comparison(c)
    return blocks if blocks else [_paragraph(c.t("no_comparison"))]


# --------------------------------------------------------------------------- Markdown

_NUMBERED = re.compile(r"(\d+)[.)]")  # "1." or "1)" would start a numbered list


def _markdown_runs(paragraph: Paragraph) -> str:
    parts = []
    for run in paragraph.runs:
        if run.style == "code":
            parts.append("`" + run.text.replace("`", "'").replace("\n", " ") + "`")
        elif run.style == "strong":
            parts.append(f"**{markdown_text(run.text)}**")
        else:
            parts.append(markdown_text(run.text))
    text = "".join(parts)
    # a paragraph must not start a block by its first characters (heading, quote, list, rule)
    numbered = _NUMBERED.match(text)
    if numbered:
        return f"{numbered.group(1)}\\{text[numbered.end(1) :]}"
    return "\\" + text if text[:1] in "#>+-=" else text


def _markdown_table(table: Table) -> list[str]:
    align = ["---:" if f is not None else "---" for f in table.formats]
    lines = [
        "| " + " | ".join(markdown_text(h) for h in table.headers) + " |",
        "|" + "|".join(align) + "|",
    ]
    for r in range(len(table.rows)):
        cells = [markdown_text(table.cell(r, k)) for k in range(len(table.headers))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown_block(block: Block, folder: Path) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + markdown_text(block.text), ""]
    if isinstance(block, Paragraph):
        return [_markdown_runs(block), ""]
    if isinstance(block, Bullets):
        return [*("- " + _markdown_runs(item) for item in block.items), ""]
    if isinstance(block, Table):
        return [*_markdown_table(block), ""]
    try:
        target = block.path.relative_to(folder).as_posix()
    except ValueError:
        target = block.path.as_posix()
    target = target.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return [f"![{markdown_text(block.caption)}]({target})", "", markdown_text(block.caption), ""]


def markdown_report(document: dict, folder: Path) -> str:
    """The report as Markdown (``report.md``): the blocks of :func:`report_blocks`.

    Every text from the data is escaped (:func:`carecheck.textsafe.markdown_text`), so a
    name shows as itself and adds no markup.
    """
    folder = Path(folder)
    lines: list[str] = []
    for block in report_blocks(document, folder):
        lines += _markdown_block(block, folder)
    return "\n".join(lines)


# --------------------------------------------------------------------------- Word


def template_path() -> Path:
    """The shipped template of ``report.docx`` (``assets/report-template.docx``)."""
    return Path(str(files("carecheck").joinpath(f"assets/{TEMPLATE_NAME}")))


def write_docx(folder: Path, *, template: Path | None = None) -> list[Path]:
    """Write ``report.docx`` into ``folder`` from its finished ``result.json``.

    Parameters
    ----------
    folder
        A finished run's output folder.
    template
        A .docx whose styles the report takes (default: :func:`template_path`); its body is
        not used. Styles it lacks fall back to Word's own.

    Returns
    -------
    list[Path]
        The paths written: ``[folder / "report.docx"]``.

    Raises
    ------
    DataError
        When ``result.json`` is missing or unreadable, the template is not a Word file, or
        ``report.docx`` cannot be replaced (open in Word).
    """
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    folder = Path(folder)
    document = read_result(folder, needs=("scenario", "types", "selected", "coverage"))
    blocks = report_blocks(document, folder)
    source = Path(template) if template is not None else template_path()
    try:
        word = docx.Document(str(source))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise DataError(
            f"{source}: not a Word template (.docx) that can be read ({exc}); give a .docx "
            "saved by Word, or leave the template out for the shipped one"
        ) from None
    _clear_body(word)
    _set_properties(word, document)
    for block in blocks:
        _docx_block(word, block)
    path = folder / "report.docx"
    partial = folder / "report.docx.partial"
    try:
        word.save(str(partial))
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DataError(
            f"{path}: cannot be written ({exc}); close it if it is open in Word and try again"
        ) from None
    return [path]


def _clear_body(word: Any) -> None:
    """Remove the template's own paragraphs and tables; its sections (page setup) stay."""
    body = word.element.body
    for child in list(body):
        if not child.tag.endswith("}sectPr"):
            body.remove(child)


def _set_properties(word: Any, document: dict) -> None:
    import datetime as dt

    props = word.core_properties
    props.title = str(document.get("title") or document["scenario"])
    props.subject = str(document["scenario"])
    props.author = "carecheck"
    props.language = "zh-CN" if (document.get("lang") or "zh") == "zh" else "en"
    created = document.get("created")
    if created:
        with contextlib.suppress(ValueError):
            props.created = dt.datetime.fromisoformat(str(created))


def _style(word: Any, name: str, fallback: str | None = None) -> Any:
    """The template's style ``name``, else ``fallback``, else None (Word's default)."""
    for candidate in (name, fallback):
        if candidate is None:
            continue
        try:
            return word.styles[candidate]
        except KeyError:
            continue
    return None


def _docx_runs(paragraph: Any, runs: tuple[Run, ...]) -> None:
    for piece in runs:
        run = paragraph.add_run(piece.text)
        if piece.style == "strong":
            run.bold = True
        elif piece.style == "code":
            run.font.name = "Consolas"


def _docx_block(word: Any, block: Block) -> None:
    if isinstance(block, Heading):
        style = "Title" if block.level == 1 else f"Heading {block.level - 1}"
        word.add_paragraph(block.text, style=_style(word, style))
    elif isinstance(block, Paragraph):
        _docx_runs(word.add_paragraph(), block.runs)
    elif isinstance(block, Bullets):
        style = _style(word, "List Bullet")
        for item in block.items:
            _docx_runs(word.add_paragraph(style=style), item.runs)
    elif isinstance(block, Table):
        _docx_table(word, block)
    else:
        _docx_figure(word, block)


def _docx_table(word: Any, table: Table) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    own_style = _style(word, TABLE_STYLE)
    grid = word.add_table(rows=1 + len(table.rows), cols=len(table.headers))
    grid.style = own_style or _style(word, "Table Grid")
    cell_style = _style(word, CELL_STYLE)
    header_row = grid.rows[0]
    repeat = OxmlElement("w:tblHeader")  # the header row repeats on every page
    repeat.set(qn("w:val"), "true")
    header_row._tr.get_or_add_trPr().append(repeat)
    for k, header in enumerate(table.headers):
        _fill(header_row.cells[k], header, table.formats[k] is not None, cell_style)
        if own_style is None:  # a template without the table style: bold header directly
            for run in header_row.cells[k].paragraphs[0].runs:
                run.bold = True
    widths = _column_widths(table, _text_width(word))
    for k, column in enumerate(grid.columns):
        column.width = widths[k]
    for r, row in enumerate(grid.rows):
        cells = row.cells
        for k in range(len(table.headers)):
            cells[k].width = widths[k]
            if r:
                _fill(cells[k], table.cell(r - 1, k), table.formats[k] is not None, cell_style)


def _text_width(word: Any) -> int:
    section = word.sections[-1]
    return int(section.page_width - section.left_margin - section.right_margin)


def shown_width(text: str) -> float:
    """Printed width of ``text`` in Latin characters (a Chinese character counts two)."""
    return float(sum(2 if ord(ch) > 0x2E7F else 1 for ch in text))


def _column_widths(table: Table, total: int) -> list[int]:
    """Column widths (EMU) summing to ``total``, by the width of what each column holds."""
    from docx.shared import Emu

    weights = []
    for k, header in enumerate(table.headers):
        longest = max((shown_width(table.cell(r, k)) for r in range(len(table.rows))), default=0)
        weights.append(min(max(longest, 0.6 * shown_width(header), 4.0), 30.0))
    return [Emu(int(total * w / sum(weights))) for w in weights]


def _fill(cell: Any, text: str, numeric: bool, style: Any) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    paragraph = cell.paragraphs[0]
    if style is not None:  # by id: python-docx's lookup by style object costs 2 ms a cell
        paragraph._p.style = style.style_id
    paragraph.add_run(text)
    if numeric:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT


def _docx_figure(word: Any, figure: Figure) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Emu
    from PIL import Image

    section = word.sections[-1]
    width = _text_width(word)
    height = int((section.page_height - section.top_margin - section.bottom_margin) * 0.75)
    try:
        with Image.open(figure.path) as image:
            pixels_w, pixels_h = image.size
    except OSError as exc:
        raise DataError(f"{figure.path}: not a readable picture ({exc})") from None
    scale = min(width / pixels_w, height / pixels_h)  # the page's width, unless too tall
    paragraph = word.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.keep_with_next = True
    paragraph.add_run().add_picture(
        str(figure.path), width=Emu(int(pixels_w * scale)), height=Emu(int(pixels_h * scale))
    )
    word.add_paragraph(figure.caption, style=_style(word, "Caption"))


# --------------------------------------------------------------------------- the template


def _east_asian(style: Any, latin: str, east_asian: str) -> None:
    """Set a style's Latin and East Asian fonts (w:rFonts w:ascii/hAnsi and w:eastAsia)."""
    from docx.oxml.ns import qn

    style.font.name = latin
    fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    for theme in ("asciiTheme", "hAnsiTheme", "eastAsiaTheme", "cstheme"):  # they would win
        fonts.attrib.pop(qn(f"w:{theme}"), None)
    fonts.set(qn("w:eastAsia"), east_asian)
    fonts.set(qn("w:hAnsi"), latin)
    fonts.set(qn("w:ascii"), latin)


def _table_style_xml(word: Any) -> None:
    """The table style ``Carecheck Table``: thin borders, a bold shaded header row."""
    from docx.oxml import parse_xml

    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    borders = "".join(
        f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="808080"/>'
        for side in ("top", "left", "bottom", "right", "insideH", "insideV")
    )
    xml = (
        f'<w:style {w} w:type="table" w:customStyle="1" w:styleId="CarecheckTable">'
        f'<w:name w:val="{TABLE_STYLE}"/><w:basedOn w:val="TableNormal"/><w:uiPriority w:val="59"/>'
        '<w:pPr><w:spacing w:before="0" w:after="0" w:line="240" w:lineRule="auto"/></w:pPr>'
        '<w:rPr><w:sz w:val="18"/><w:szCs w:val="18"/></w:rPr>'
        f"<w:tblPr><w:tblBorders>{borders}</w:tblBorders>"
        '<w:tblCellMar><w:left w:w="72" w:type="dxa"/><w:right w:w="72" w:type="dxa"/>'
        "</w:tblCellMar></w:tblPr>"
        '<w:tblStylePr w:type="firstRow"><w:rPr><w:rFonts w:eastAsia="SimHei"/><w:b/>'
        "<w:bCs/></w:rPr>"
        '<w:tcPr><w:shd w:val="clear" w:color="auto" w:fill="D9E2F3"/></w:tcPr></w:tblStylePr>'
        "</w:style>"
    )
    word.styles.element.append(parse_xml(xml))


def _page_number_footer(section: Any) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    paragraph = section.footer.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for kind, text in (("begin", None), (None, " PAGE "), ("end", None)):
        run = paragraph.add_run()
        if kind is not None:
            element = OxmlElement("w:fldChar")
            element.set(qn("w:fldCharType"), kind)
        else:
            element = OxmlElement("w:instrText")
            element.set(qn("xml:space"), "preserve")
            element.text = text
        run._r.append(element)


def build_template(path: Path | None = None) -> Path:
    """Write the report template (default: the shipped ``assets/report-template.docx``).

    A4 portrait, 2.5 cm margins, a page number in the footer; body 宋体 (SimSun) 10.5 pt with
    Times New Roman for Latin text, headings and title 黑体 (SimHei) in black; table cells
    9 pt (style ``Table Text``); the table style ``Carecheck Table``.
    """
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt, RGBColor

    path = Path(path) if path is not None else template_path()
    word = docx.Document()
    section = word.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(2.5))
    _page_number_footer(section)
    defaults = word.styles.element.find(qn("w:docDefaults"))
    language = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr")).find(qn("w:lang"))
    if language is not None:
        language.set(qn("w:eastAsia"), "zh-CN")
    normal = word.styles["Normal"]
    _east_asian(normal, "Times New Roman", "SimSun")
    normal.font.size = Pt(10.5)
    normal.paragraph_format.space_after = Pt(4)
    normal.paragraph_format.line_spacing = 1.25
    sizes = {"Title": 18, "Heading 1": 15, "Heading 2": 12, "Heading 3": 11, "Caption": 9}
    for name, size in sizes.items():
        style = word.styles[name]
        _east_asian(style, "Arial" if name != "Caption" else "Times New Roman", "SimHei")
        style.font.size = Pt(size)
        style.font.color.rgb = RGBColor(0, 0, 0)
        style.font.bold = name != "Caption"
        style.font.italic = False
    title = word.styles["Title"]
    title.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    borders = title.element.pPr.find(qn("w:pBdr"))
    if borders is not None:  # the default template's blue rule under the title
        title.element.pPr.remove(borders)
    for name in ("Heading 1", "Heading 2", "Heading 3"):
        word.styles[name].paragraph_format.space_before = Pt(12)
        word.styles[name].paragraph_format.space_after = Pt(6)
    word.styles["Caption"].paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    cells = word.styles.add_style(CELL_STYLE, WD_STYLE_TYPE.PARAGRAPH)
    cells.base_style = normal
    cells.font.size = Pt(9)
    cells.paragraph_format.space_after = Pt(0)
    cells.paragraph_format.line_spacing = 1.0
    _table_style_xml(word)
    _clear_body(word)
    word.core_properties.author = "carecheck"
    word.core_properties.title = "carecheck report template"
    path.parent.mkdir(parents=True, exist_ok=True)
    word.save(str(path))
    return path
