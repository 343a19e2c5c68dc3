"""Read and validate a scenario YAML into a frozen, fully resolved :class:`Scenario`.

Every problem in a file is reported at once, each as ``file → key.path: message (got: value)``.
Paths in the file are relative to the scenario file; they are resolved here, once.
"""

from __future__ import annotations

import math
import os
import re
import stat
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, NoReturn

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from carecheck import objectives
from carecheck.errors import ScenarioError

# For pydantic's Rust regex `$` is the very end; Python's `re` must use is_name (fullmatch),
# since there `$` also matches before a final newline ("home\n" would pass).
# letters of any script (宁波, 养老机构), digits, - and _
NAME_CHARS = r"[\w-]+"
NAME_PATTERN = rf"^{NAME_CHARS}$"
NAME_RULE = "letters (Chinese too), digits, - and _ only"
# names Windows gives to devices: a folder outputs/CON cannot be made there
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10))}
_WINDOWS_DEVICES |= {f"lpt{i}" for i in range(10)}
SOLVERS = ("cbc", "highs")
REACH_KINDS = ("radius_m", "network_m", "travel_min")

PositiveMetres = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


def is_name(text: str) -> bool:
    """Whether ``text`` as a whole is a name: letters of any script, digits, - and _ (no
    control characters, spaces or punctuation)."""
    return re.fullmatch(NAME_CHARS, text) is not None


def has_control_chars(text: str) -> bool:
    """Whether ``text`` holds a control character (C0/C1: line breaks, tabs, ...) or a Unicode
    line or paragraph separator."""
    return any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in text)


class _Strict(BaseModel):
    # allow_inf_nan off: .inf, .nan, "1e999" (→ inf) are refused in every float field
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


FilterValue = str | int | float | bool
COORD_KINDS = ("wgs84", "gcj02", "bd09")
TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm", ".xls", ".ods")


class LayerSpec(_Strict):
    """Where a layer lives and which columns mean what.

    Tables (CSV, Excel, OpenDocument) hold points as ``lon``/``lat`` columns (degrees; WGS84
    unless ``coords`` or ``crs`` says otherwise) or as ``x``/``y`` columns in the projected
    ``crs`` (x = easting, y = northing). ``sheet`` picks a spreadsheet's sheet (default the
    first); ``encoding`` a CSV's or Shapefile's text encoding (default: detected).
    ``coords: gcj02 | bd09`` says the longitudes and latitudes are Amap/Tencent (GCJ-02) or
    Baidu (BD-09) coordinates, converted to WGS84 on reading. ``filter`` keeps only the rows
    whose columns equal the given values (a list: any of them).
    """

    path: Path
    layer: str | None = None
    sheet: str | None = None
    id: str
    lon: str | None = None
    lat: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    coords: Literal["wgs84", "gcj02", "bd09"] | None = None
    encoding: str | None = None
    filter: dict[str, FilterValue | list[FilterValue]] | None = None

    @model_validator(mode="after")
    def _lon_lat_together(self) -> LayerSpec:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both `lon` and `lat` column names, or neither")
        if (self.x is None) != (self.y is None):
            raise ValueError("give both `x` (easting) and `y` (northing) column names, or neither")
        if self.x is not None and self.lon is not None:
            raise ValueError(
                "give `lon`/`lat` (degrees) or `x`/`y` (a projected CRS's metres), not both"
            )
        if self.x is not None and self.crs is None:
            raise ValueError(
                "`x`/`y` columns need the table's projected `crs:` (e.g. EPSG:4549 for "
                "CGCS2000 / 3-degree Gauss-Kruger CM 120E)"
            )
        if self.x is not None and self.coords not in (None, "wgs84"):
            raise ValueError(
                f"`coords: {self.coords}` is for longitude/latitude; a projected table "
                "(`x`/`y`) has no GCJ-02 or BD-09 shift"
            )
        suffix = self.path.suffix.lower()
        table = suffix in TABLE_SUFFIXES
        if self.sheet is not None and suffix not in (".xlsx", ".xlsm", ".xls", ".ods"):
            raise ValueError(f"`sheet` is for spreadsheets (.xlsx, .xls, .ods), not {suffix}")
        if not table and (self.lon is not None or self.x is not None):
            raise ValueError(
                f"`lon`/`lat` and `x`/`y` are for tables (CSV, Excel); a {suffix or 'GIS'} "
                "layer holds its own geometry"
            )
        if self.encoding is not None and suffix not in (".csv", ".txt", ".shp", ".dbf"):
            raise ValueError(f"`encoding` is for CSV and Shapefile layers, not {suffix}")
        if self.filter is not None and not self.filter:
            raise ValueError("`filter` needs at least one column: value")
        return self


class DemandSpec(LayerSpec):
    """The demand layer: where the elderly live, and how many.

    ``growth`` scales the weights for future demand: one factor, or a factor per region
    (regions not listed keep ``default``, 1 unless given), e.g. the 2030 projection of each
    county's population aged 60+ over today's.
    """

    weight: str
    region: str | None = None
    name: str | None = None
    growth: Annotated[float, Field(gt=0)] | dict[str, Annotated[float, Field(gt=0)]] | None = None

    @model_validator(mode="after")
    def _growth_by_region_needs_region(self) -> DemandSpec:
        if isinstance(self.growth, dict) and self.region is None:
            raise ValueError("growth per region needs the `region` column")
        return self

    def growth_factors(self, regions: np.ndarray) -> np.ndarray:
        """The growth factor of each demand unit, from its region."""
        if self.growth is None:
            return np.ones(len(regions))
        if not isinstance(self.growth, dict):
            return np.full(len(regions), float(self.growth))
        default = float(self.growth.get("default", 1.0))
        return np.array([float(self.growth.get(str(r), default)) for r in regions])


class RegionSpec(_Strict):
    """Region boundaries (polygons) for the map; ``name`` matches the demand's region values."""

    path: Path
    layer: str | None = None
    name: str


class SiteSpec(LayerSpec):
    """A layer of candidate sites or existing facilities, with optional column mappings."""

    name: str | None = None
    tier: str | None = None
    action: str | None = None
    cost: str | None = None
    beds: str | None = None
    region: str | None = None


class CountSpec(_Strict):
    """Exact, minimum or maximum number of sites to open."""

    count: Count | None = None
    min_count: Count | None = None
    max_count: Count | None = None

    @model_validator(mode="after")
    def _consistent_counts(self) -> CountSpec:
        if self.count is not None and (self.min_count is not None or self.max_count is not None):
            raise ValueError("give `count` alone, or `min_count` / `max_count`, not both")
        if (
            self.min_count is not None
            and self.max_count is not None
            and self.min_count > self.max_count
        ):
            raise ValueError(
                f"min_count {self.min_count} is larger than max_count {self.max_count}"
            )
        return self

    @property
    def lower(self) -> int:
        """The least number of sites this spec allows."""
        return self.count if self.count is not None else (self.min_count or 0)

    @property
    def upper(self) -> int | None:
        """The most sites this spec allows, None when unbounded."""
        return self.count if self.count is not None else self.max_count

    @property
    def bounded(self) -> bool:
        return self.upper is not None


class Reach(NamedTuple):
    """How far a site reaches: ``kind`` radius_m | network_m | travel_min, its value, mode."""

    kind: str
    value: float
    mode: str | None = None

    def label(self) -> str:
        if self.kind == "radius_m":
            return f"{self.value:,.0f} m"
        if self.kind == "network_m":
            return f"{self.value:,.0f} m by road"
        return f"{self.value:g} min {self.mode}"


class ReachSpec(_Strict):
    """One of radius_m (straight line), network_m (along roads) or travel_min (with mode)."""

    radius_m: PositiveMetres | None = None
    network_m: PositiveMetres | None = None
    travel_min: Annotated[float, Field(gt=0)] | None = None
    mode: Literal["walk", "drive"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ReachSpec:
        given = [k for k in REACH_KINDS if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of radius_m, network_m, travel_min (got: {given})")
        if self.mode is not None and self.travel_min is None:
            raise ValueError("`mode` goes with `travel_min`")
        return self

    @property
    def own_reach(self) -> Reach | None:
        for kind in REACH_KINDS:
            value = getattr(self, kind)
            if value is not None:
                mode = (self.mode or "walk") if kind == "travel_min" else None
                return Reach(kind, float(value), mode)
        return None


class ReferralSpec(_Strict):
    """A site of this tier counts only with a site of ``tiers`` (existing or opened) within
    ``within_m`` (straight line) to refer to — the county → town → village hierarchy."""

    tiers: list[str] = Field(min_length=1)
    within_m: PositiveMetres


class TierSpec(CountSpec, ReachSpec):
    """Reach and counts of one tier of a facility type; ``basis`` says why this reach (a
    standard or plan, e.g. ``GB 50180-2018 十五分钟生活圈``) for the report."""

    referral: ReferralSpec | None = None
    basis: Annotated[str, Field(min_length=1, max_length=300)] | None = None


class FacilitySpec(CountSpec, ReachSpec):
    """One facility type: its reach, counts, candidates, existing facilities and tiers."""

    candidates: SiteSpec
    existing: SiteSpec | None = None
    tiers: dict[str, TierSpec] | None = None
    basis: Annotated[str, Field(min_length=1, max_length=300)] | None = None

    @field_validator("tiers")
    @classmethod
    def _tier_names(cls, value: dict[str, TierSpec] | None) -> dict[str, TierSpec] | None:
        bad = [name for name in value or {} if not is_name(name)]
        if bad:
            raise ValueError(f"tier names may use {NAME_RULE} (got: {bad})")
        return value

    @model_validator(mode="after")
    def _reach_given(self) -> FacilitySpec:
        if self.own_reach is None:
            missing = [t for t, spec in (self.tiers or {}).items() if spec.own_reach is None]
            if not self.tiers or missing:
                where = f" (tiers without one: {', '.join(missing)})" if missing else ""
                raise ValueError(
                    "give a reach (radius_m, network_m or travel_min) for the type, or one for "
                    f"every tier{where}"
                )
            if self.existing is not None and self.existing.tier is None:
                raise ValueError(
                    "existing facilities have no `tier` column, so they need the type's reach"
                )
        if self.tiers and self.candidates.tier is None:
            raise ValueError("`tiers` are given, so `candidates` needs a `tier` column mapping")
        for name, tier in (self.tiers or {}).items():
            if tier.referral is None:
                continue
            unknown = [t for t in tier.referral.tiers if t not in (self.tiers or {})]
            if unknown or name in tier.referral.tiers:
                raise ValueError(
                    f"tiers.{name}.referral.tiers must name other tiers of this type "
                    f"(got: {tier.referral.tiers})"
                )
        return self

    def reach_of(self, tier: str | None) -> Reach:
        """Reach of a site of this type in ``tier`` (the type's reach when no tier applies)."""
        if tier is not None and self.tiers and tier in self.tiers:
            own = self.tiers[tier].own_reach
            if own is not None:
                return own
        own = self.own_reach
        assert own is not None  # guaranteed by _reach_given for untiered sites
        return own

    def reaches(self) -> list[Reach]:
        """Every reach this type uses (the type's and its tiers')."""
        found = [r for r in [self.own_reach] if r is not None]
        found += [t.own_reach for t in (self.tiers or {}).values() if t.own_reach is not None]
        return found

    def reach_label(self) -> str:
        """Reach for people: one value, or one per tier."""
        if not self.tiers:
            return self.reach_of(None).label()
        return ", ".join(f"{t} {self.reach_of(t).label()}" for t in self.tiers)

    @property
    def total_upper(self) -> int | None:
        """Most sites of this type the counts allow (type count, else the sum over tiers)."""
        if self.upper is not None:
            return self.upper
        if self.tiers and all(t.upper is not None for t in self.tiers.values()):
            return sum(t.upper for t in self.tiers.values() if t.upper is not None)
        return None


class ObjectiveSpec(_Strict):
    """What to optimise.

    ``max_coverage``: the most elderly within reach; ``weights`` scale each type's covered
    weight (default 1). ``min_sites``: the fewest sites (``minimize: cost``: the least cost)
    that cover ``target`` — per type, a share of the elderly (existing coverage included;
    1.0 = every elderly person: set covering), in each region when
    ``by_region``. ``capacitated``: the most bed need (``beds:``) that the beds of open and
    existing sites within reach can serve, no site beyond its beds.
    """

    kind: str = "max_coverage"  # a key of carecheck.objectives.kinds()
    weights: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    target: dict[str, Share] = Field(default_factory=dict)
    by_region: bool = False
    minimize: Literal["count", "cost"] = "count"
    type: str | None = None  # min_distance: the facility type placed (default: the only one)
    max_distance_m: Annotated[float, Field(gt=0)] | None = None  # min_distance: every elderly

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        known = objectives.kinds()
        if kind not in known:
            quoted = [repr(k) for k in known]
            raise ValueError(f"Input should be {', '.join(quoted[:-1])} or {quoted[-1]}")
        return kind

    @model_validator(mode="after")
    def _keys_of_the_kind(self) -> ObjectiveSpec:
        problem = objectives.get(self.kind).spec_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class ConstraintsSpec(_Strict):
    """Optional constraints across types and regions."""

    budget: Annotated[float, Field(ge=0)] | None = None
    region_min_sites: dict[str, Count | dict[str, Count]] = Field(default_factory=dict)
    region_min_coverage: dict[str, Share | dict[str, Share]] = Field(default_factory=dict)
    min_beds: dict[str, Count] = Field(default_factory=dict)


class SolverSpec(_Strict):
    """Which MILP solver, and when to stop."""

    name: Literal["cbc", "highs"] = "cbc"
    time_limit_s: Annotated[float, Field(gt=0)] | None = 300.0
    mip_gap: Annotated[float, Field(ge=0, lt=1)] = 0.0
    threads: Annotated[int, Field(ge=1)] | None = None
    # CBC switches, e.g. ["heur off"]; default ["feas off", "preprocess off"] (both slow here)
    cbc_options: list[str] | None = None
    # starting plan for plain covering models: by default greedy then improving swaps;
    # start_s > 0 adds that many seconds of perturbation (iterated local search); 0 = none
    start_s: Annotated[float, Field(ge=0)] | None = None


class BedsSpec(_Strict):
    """Bed need: ``per_1000`` beds per 1,000 demand weight (e.g. 40 per 1,000 elderly), of
    which ``nursing_share`` should be nursing beds; ``types`` provide beds (default: every type
    whose candidates have a beds column)."""

    per_1000: Annotated[float, Field(gt=0)]
    nursing_share: Share | None = None
    types: list[str] | None = None


class MapSpec(_Strict):
    """The map: language of its labels (place names stay Chinese) and whether it must open
    without internet access."""

    lang: Literal["zh", "en"] = "zh"
    offline: bool = False
    write: bool = True


class OutputsSpec(_Strict):
    """The files handed on: the CRS of the GIS layers (default: the working CRS), the paper of
    the printable map, and Shapefiles beside the GeoPackage (with a GBK DBF for ArcMap 10.x)."""

    crs: str | None = None
    paper: Literal["A4", "A3"] = "A3"
    shapefile: bool = False
    gbk_dbf: bool = False

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        if value is not None:
            from pyproj import CRS
            from pyproj.exceptions import CRSError

            try:
                CRS.from_user_input(value)
            except CRSError:
                raise ValueError(
                    f"not a coordinate reference system: {value!r} (e.g. EPSG:4549)"
                ) from None
        return value


class NetworkSpec(_Strict):
    """A road network: a line layer, or the node/edge GeoPackage or GraphML OSMnx saves."""

    path: Path
    layer: str | None = None
    length: str | None = None
    speed_kmh: str | None = None
    road_class: str | None = Field(default=None, alias="class")
    class_speeds: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    oneway: str | None = None
    default_speed_kmh: Annotated[float, Field(gt=0)] = 30.0
    walk_m_per_min: Annotated[float, Field(gt=0)] = 60.0
    max_snap_m: Annotated[float, Field(gt=0)] = 500.0

    @model_validator(mode="after")
    def _classes_with_speeds(self) -> NetworkSpec:
        if self.class_speeds and self.road_class is None:
            raise ValueError("`class_speeds` needs the `class` column name")
        return self


class Scenario(_Strict):
    """A validated scenario. ``source`` is the file it came from (None when built in code)."""

    name: str
    title: str | None = None
    crs: str | None = None
    demand: DemandSpec
    facilities: dict[str, FacilitySpec] = Field(min_length=1)
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    constraints: ConstraintsSpec = Field(default_factory=ConstraintsSpec)
    solver: SolverSpec = Field(default_factory=SolverSpec)
    compare_with: Path | None = None
    regions: RegionSpec | None = None
    network: NetworkSpec | None = None
    beds: BedsSpec | None = None
    map: MapSpec = Field(default_factory=MapSpec)
    lang: Literal["zh", "en"] | None = None
    cost_unit: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)
    source: Path | None = Field(default=None, exclude=True)

    @property
    def language(self) -> str:
        """The language of every output: ``lang``, else the older ``map.lang``, else zh."""
        return self.lang or self.map.lang

    def basis_of(self, type_name: str, tier: str | None = None) -> str | None:
        """Why this reach: the tier's ``basis``, else the type's."""
        spec = self.facilities[type_name]
        tier_spec = (spec.tiers or {}).get(tier) if tier is not None else None
        return (tier_spec.basis if tier_spec is not None else None) or spec.basis

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _scenario_name(cls, value: str) -> str:
        if not is_name(value):
            raise ValueError(f"the scenario name names the output folder: use {NAME_RULE}")
        if value.lower() in _WINDOWS_DEVICES:
            raise ValueError(f"{value!r} is a device name on Windows; choose another name")
        return value

    @field_validator("facilities")
    @classmethod
    def _type_names(cls, value: dict[str, FacilitySpec]) -> dict[str, FacilitySpec]:
        bad = [name for name in value if not is_name(name)]
        if bad:
            raise ValueError(f"facility type names may use {NAME_RULE} (got: {bad})")
        return value

    @field_validator("title")
    @classmethod
    def _title_on_one_line(cls, value: str | None) -> str | None:
        if value is not None and has_control_chars(value):
            raise ValueError(
                "the title is one line of text: no line breaks, tabs or other control "
                "characters (they would break the reports' Markdown)"
            )
        return value

    def bed_types(self) -> list[str]:
        """Facility types whose beds serve the bed need."""
        if self.beds is None:
            return []
        if self.beds.types is not None:
            return list(self.beds.types)
        return [t for t, spec in self.facilities.items() if spec.candidates.beds is not None]

    def alpha(self, type_name: str) -> float:
        """Objective weight of a facility type."""
        return self.objective.weights.get(type_name, 1.0)

    def with_solver(
        self,
        *,
        name: str | None = None,
        time_limit_s: float | None = None,
        mip_gap: float | None = None,
    ) -> Scenario:
        """A copy with solver settings overridden (None keeps the scenario's value)."""
        changes: dict[str, Any] = {}
        if name is not None:
            if name not in SOLVERS:
                raise ScenarioError([f"--solver: unknown solver (got: {name}); use cbc or highs"])
            changes["name"] = name
        if time_limit_s is not None:
            if not math.isfinite(time_limit_s) or time_limit_s <= 0:
                raise ScenarioError(
                    [f"--time-limit: must be a finite number > 0 seconds (got: {time_limit_s})"]
                )
            changes["time_limit_s"] = time_limit_s
        if mip_gap is not None:
            if not 0 <= mip_gap < 1:
                raise ScenarioError([f"--gap: must be in [0, 1) (got: {mip_gap})"])
            changes["mip_gap"] = mip_gap
        return self.model_copy(update={"solver": self.solver.model_copy(update=changes)})


def _unknown_type(key: str, name: str, types: set[str]) -> tuple[str, str, Any]:
    return (key, f"unknown facility type; known: {sorted(types)}", name)


def _objective_checks(
    scenario: Scenario, objective: objectives.Objective
) -> list[tuple[str, str, Any]]:
    """The objective section: the objective's own rules, targets, by_region, cost, weights."""
    problems: list[tuple[str, str, Any]] = []
    types = set(scenario.facilities)
    problems += objective.scenario_problems(scenario)
    for key in scenario.objective.target:
        if key not in types:
            problems.append(_unknown_type(f"objective.target.{key}", key, types))
    if scenario.objective.by_region and scenario.demand.region is None:
        problems.append(("demand.region", "objective.by_region needs a region column", None))
    if scenario.objective.minimize == "cost":
        for type_name, spec in scenario.facilities.items():
            if spec.candidates.cost is None:
                problems.append(
                    (
                        f"facilities.{type_name}.candidates.cost",
                        "objective.minimize: cost needs a cost column on every type's candidates",
                        None,
                    )
                )
    for key in scenario.objective.weights:
        if key not in types:
            problems.append(_unknown_type(f"objective.weights.{key}", key, types))
    return problems


def _constraint_checks(scenario: Scenario) -> list[tuple[str, str, Any]]:
    """The constraints section: known types, and the region columns per-region rules need."""
    problems: list[tuple[str, str, Any]] = []
    types = set(scenario.facilities)
    constraints = scenario.constraints
    for group in ("region_min_sites", "region_min_coverage", "min_beds"):
        for type_name in getattr(constraints, group):
            if type_name not in types:
                problems.append(_unknown_type(f"constraints.{group}.{type_name}", type_name, types))
    if (constraints.region_min_sites or constraints.region_min_coverage) and (
        scenario.demand.region is None
    ):
        problems.append(
            (
                "demand.region",
                "per-region constraints need a region column on the demand layer",
                None,
            )
        )
    for type_name in constraints.region_min_sites:
        with_sites = scenario.facilities.get(type_name)
        if with_sites is not None and with_sites.candidates.region is None:
            problems.append(
                (
                    f"facilities.{type_name}.candidates.region",
                    "constraints.region_min_sites needs the candidates' region column",
                    None,
                )
            )
    return problems


def _network_checks(scenario: Scenario) -> list[tuple[str, str, Any]]:
    """The network section: network_m / travel_min reaches need a road layer."""
    problems: list[tuple[str, str, Any]] = []
    for type_name, spec in scenario.facilities.items():
        kinds = {r.kind for r in spec.reaches()}
        if kinds - {"radius_m"} and scenario.network is None:
            problems.append(
                (
                    f"facilities.{type_name}",
                    "network_m / travel_min reach needs a `network:` section (a road layer)",
                    None,
                )
            )
    return problems


def _bed_checks(scenario: Scenario) -> list[tuple[str, str, Any]]:
    """The beds section: known bed types, each with a beds column; min_beds' columns."""
    problems: list[tuple[str, str, Any]] = []
    types = set(scenario.facilities)
    if scenario.beds is not None:
        for type_name in scenario.bed_types():
            bed_type = scenario.facilities.get(type_name)
            if bed_type is None:
                problems.append(_unknown_type(f"beds.types.{type_name}", type_name, types))
                continue
            for role in ("candidates", "existing"):
                layer = getattr(bed_type, role)
                if layer is not None and layer.beds is None:
                    problems.append(
                        (
                            f"facilities.{type_name}.{role}.beds",
                            "beds: needs the beds column of every bed type's sites",
                            None,
                        )
                    )
        if not scenario.bed_types():
            problems.append(("beds", "no facility type provides beds (map `beds:` columns)", None))
    for type_name in scenario.constraints.min_beds:
        with_beds = scenario.facilities.get(type_name)
        if with_beds is not None and with_beds.candidates.beds is None:
            problems.append(
                (
                    f"facilities.{type_name}.candidates.beds",
                    "constraints.min_beds needs the candidates' beds column",
                    None,
                )
            )
    return problems


def _facility_checks(
    scenario: Scenario, objective: objectives.Objective
) -> list[tuple[str, str, Any]]:
    """The facilities section, type by type: cost for a budget, a site limit, the tiers."""
    problems: list[tuple[str, str, Any]] = []
    budget = scenario.constraints.budget
    for type_name, spec in scenario.facilities.items():
        if budget is not None and spec.candidates.cost is None:
            problems.append(
                (
                    f"facilities.{type_name}.candidates.cost",
                    "constraints.budget needs a cost column on every type's candidates",
                    None,
                )
            )
        if spec.total_upper is None and budget is None and objective.needs_site_limit:
            problems.append(
                (
                    f"facilities.{type_name}",
                    "no `count`, `max_count` (on the type or every tier) and no "
                    "constraints.budget: the plan would open every candidate",
                    None,
                )
            )
        if spec.tiers and spec.count is not None:
            lower = sum(t.lower for t in spec.tiers.values())
            if lower > spec.count:
                problems.append(
                    (
                        f"facilities.{type_name}.tiers",
                        f"the tiers ask for at least {lower} sites but the type's count is "
                        f"{spec.count}",
                        lower,
                    )
                )
    return problems


def _cross_checks(scenario: Scenario) -> list[tuple[str, str, Any]]:
    """Rules that span several keys: (key path, message, offending value).

    One function per section, called in a fixed order so the problems are listed
    in the same order on every run.
    """
    objective = objectives.get(scenario.objective.kind)
    return [
        *_objective_checks(scenario, objective),
        *_constraint_checks(scenario),
        *_network_checks(scenario),
        *_bed_checks(scenario),
        *_facility_checks(scenario, objective),
    ]


def _format(source: str, path: str, message: str, value: Any = None) -> str:
    shown = "" if value is None else repr(value)
    if len(shown) > 200:  # e.g. a list of thousands: its start is enough
        shown = shown[:200] + " …"
    got = "" if value is None else f" (got: {shown})"
    return f"{source} → {path}: {message}{got}"


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    # pydantic puts union-member and validator names into loc; keep only real keys
    parts = [
        str(p)
        for p in loc
        if not (
            isinstance(p, str)
            and (p.startswith(("function-", "constrained-")) or p in {"int", "float", "dict"})
        )
    ]
    return ".".join(parts) or "(top level)"


def scenario_from_dict(
    data: Any, *, source: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Validate a parsed scenario mapping; paths are resolved against ``base_dir``."""
    if not isinstance(data, dict):
        raise ScenarioError(
            [_format(source, "(top level)", "expected a mapping of keys", type(data).__name__)]
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (misspelled?)"
            value = err.get("input")
            shown = None if isinstance(value, dict) or err["type"] == "missing" else value
            problems.append(_format(source, _loc_to_path(err["loc"]), msg, shown))
        raise ScenarioError(problems) from None
    if base_dir is not None:
        scenario = _resolve_paths(scenario, base_dir)
    problems = [_format(source, *p) for p in _cross_checks(scenario)]
    if base_dir is not None:
        problems += [_format(source, *p) for p in _missing_files(scenario)]
    if problems:
        raise ScenarioError(problems)
    return scenario


def _layer_specs(scenario: Scenario) -> list[tuple[str, LayerSpec]]:
    specs: list[tuple[str, LayerSpec]] = [("demand", scenario.demand)]
    for type_name, spec in scenario.facilities.items():
        specs.append((f"facilities.{type_name}.candidates", spec.candidates))
        if spec.existing is not None:
            specs.append((f"facilities.{type_name}.existing", spec.existing))
    return specs


def _missing_files(scenario: Scenario) -> list[tuple[str, str, Any]]:
    missing = [
        (f"{key}.path", "file not found; paths are relative to the scenario file", str(spec.path))
        for key, spec in _layer_specs(scenario)
        if not spec.path.exists()
    ]
    if scenario.network is not None and not scenario.network.path.exists():
        missing.append(
            (
                "network.path",
                "file not found; paths are relative to the scenario file",
                str(scenario.network.path),
            )
        )
    if scenario.regions is not None and not scenario.regions.path.exists():
        missing.append(
            (
                "regions.path",
                "file not found; paths are relative to the scenario file",
                str(scenario.regions.path),
            )
        )
    if scenario.compare_with is not None and not scenario.compare_with.exists():
        missing.append(
            (
                "compare_with",
                "scenario file not found; paths are relative to the scenario file",
                str(scenario.compare_with),
            )
        )
    return missing


def _resolve_paths(scenario: Scenario, base_dir: Path) -> Scenario:
    def fix(spec: Any) -> Any:
        return spec.model_copy(update={"path": (base_dir / spec.path).resolve()})

    facilities = {
        name: spec.model_copy(
            update={
                "candidates": fix(spec.candidates),
                "existing": fix(spec.existing) if spec.existing is not None else None,
            }
        )
        for name, spec in scenario.facilities.items()
    }
    compare_with = (
        (base_dir / scenario.compare_with).resolve() if scenario.compare_with is not None else None
    )
    return scenario.model_copy(
        update={
            "demand": fix(scenario.demand),
            "facilities": facilities,
            "compare_with": compare_with,
            "regions": fix(scenario.regions) if scenario.regions is not None else None,
            "network": fix(scenario.network) if scenario.network is not None else None,
        }
    )


# What a YAML file (scenario or sweep) may hold: a scenario is a few KB, nests a few levels
# and uses an alias or two; far beyond that a file is a mistake or an attack (issue 18).
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000  # counted with every alias expanded
MAX_YAML_DEPTH = 50
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_ALIAS_LIMITS = (
    f"aliases are limited to {MAX_YAML_ALIASES} uses and {MAX_YAML_NODES:,} values once "
    "expanded (an alias bomb?)"
)


def _short(key: Any) -> str:
    """A key as a step of a key path, cut short when it is long."""
    text = str(key)
    return text if len(text) <= 80 else text[:80] + "…"


class _Refused(yaml.YAMLError):
    """The file breaks a limit of the loader; ``mark`` is where."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _GuardedLoader(yaml.SafeLoader):
    """A SafeLoader that bounds aliases, expanded size and nesting, and records duplicate keys
    and non-finite numbers (with key path and line) in ``problems`` instead of taking them."""

    def __init__(self, stream: str, source: str) -> None:
        super().__init__(stream)
        self.source = source
        self.problems: list[str] = []
        self._aliases = 0
        self._composed = 0
        self._sizes: dict[int, int] = {}  # id(node) → node count with aliases expanded
        self._path: list[str] = []

    def _key_path(self, *more: str) -> str:
        return ".".join([*self._path[1:], *more]) or "(top level)"

    def _refuse(self, message: str, mark: Any) -> NoReturn:
        raise _Refused(message, mark)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                self._refuse(
                    f"more than {MAX_YAML_ALIASES} aliases (*{event.anchor} and others): "
                    f"{_ALIAS_LIMITS}",
                    event.start_mark,
                )
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                self._refuse(
                    f"alias *{event.anchor} refers to a node that contains it; aliases are "
                    "limited to finished nodes",
                    event.start_mark,
                )
            return node
        mark = self.peek_event().start_mark
        self._composed += 1
        if self._composed > MAX_YAML_NODES:
            self._refuse(f"more than {MAX_YAML_NODES:,} values; is this a scenario?", mark)
        if len(self._path) >= MAX_YAML_DEPTH:
            self._refuse(f"nested more than {MAX_YAML_DEPTH} levels deep", mark)
        if parent is None:
            label = ""
        elif isinstance(index, int):
            label = str(index)
        elif isinstance(index, yaml.ScalarNode):
            label = _short(index.value)
        else:  # a key itself, or the value of a complex key
            label = "(key)"
        self._path.append(label)
        try:
            node = super().compose_node(parent, index)
            self._check(node, mark)
        finally:
            self._path.pop()
        return node

    def _check(self, node: yaml.Node | None, mark: Any) -> None:
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
            self._duplicate_keys(node)
        elif (
            isinstance(node, yaml.ScalarNode)
            and node.tag == _FLOAT_TAG
            and not math.isfinite(self.construct_yaml_float(node))
        ):
            self.problems.append(
                _format(
                    self.source,
                    self._key_path(),
                    f"line {mark.line + 1}: not a finite number; give a number "
                    "(.inf, .nan and numbers beyond ±1.8e308 are not)",
                    node.value,
                )
            )
        size = 1 + sum(self._sizes.get(id(child), 1) for child in children)
        self._sizes[id(node)] = size
        if size > MAX_YAML_NODES:
            self._refuse(
                f"expands to more than {MAX_YAML_NODES:,} values ({self._aliases} aliases so "
                f"far): {_ALIAS_LIMITS}",
                mark,
            )

    def _duplicate_keys(self, node: yaml.MappingNode) -> None:
        first: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                continue
            line = key.start_mark.line + 1
            ident = (key.tag, key.value)
            if ident not in first:
                first[ident] = line
            else:
                seen, name = first[ident], _short(key.value)
                self.problems.append(
                    _format(
                        self.source,
                        self._key_path(name),
                        f"key {name!r} is given twice, on line {seen} and on line {line}; "
                        "YAML would silently keep only the last, so keep one",
                    )
                )


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _read_bytes(path: Path, source: str, what: str) -> bytes:
    """At most MAX_YAML_BYTES of a regular file; never blocks on a pipe or reads a device."""
    too_large = (
        f"{source}: larger than {MAX_YAML_BYTES // 2**20} MiB, more than a {what} file may be; "
        "is this the right file?"
    )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ScenarioError([f"{source}: {what} file not found"]) from None
    except OSError as exc:
        raise ScenarioError([f"{source}: cannot read the file ({exc.strerror})"]) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(
                [f"{source}: {_file_kind(info.st_mode)}, not a file; give a {what} YAML file"]
            )
        if info.st_size > MAX_YAML_BYTES:
            raise ScenarioError([too_large])
        with os.fdopen(os.dup(fd), "rb") as handle:
            raw = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ScenarioError([f"{source}: cannot read the file ({exc.strerror})"]) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_YAML_BYTES:
        raise ScenarioError([too_large])
    return raw


def read_yaml(path: str | Path, *, what: str = "scenario") -> tuple[Any, list[str]]:
    """Parse a YAML file that may be hostile: a regular file of at most 4 MiB, UTF-8 (a
    leading BOM is fine), at most 100 aliases, 100,000 values (aliases expanded) and 50
    levels of nesting, else :class:`ScenarioError`.

    Returns the data and the problems that did not stop the parse (duplicate keys, non-finite
    numbers), each naming the file, key path and line(s), for the caller to report along with
    its own.
    """
    path = Path(path)
    source = str(path)
    raw = _read_bytes(path, source, what)
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            [f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"]
        ) from None
    loader = _GuardedLoader(text, source)
    try:
        data = loader.get_single_data()
    except _Refused as exc:
        raise ScenarioError(
            [f"{source} → line {exc.mark.line + 1}, column {exc.mark.column + 1}: {exc.message}"]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" → line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([f"{source}{where}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise ScenarioError([f"{source}: invalid YAML: nested too deeply"]) from None
    except (ValueError, OverflowError) as exc:  # e.g. a timestamp 2026-13-01, a 5000-digit int
        raise ScenarioError([f"{source}: invalid YAML value: {exc}"]) from None
    finally:
        loader.dispose()
    problems = loader.problems
    if len(problems) > 100:
        problems = [*problems[:100], f"{source}: and {len(problems) - 100:,} more like these"]
    return data, problems


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and resolve a scenario YAML file.

    Parameters
    ----------
    path
        The scenario file; its layer paths are resolved against its folder.

    Returns
    -------
    Scenario
        The validated scenario, every path absolute.

    Raises
    ------
    ScenarioError
        Listing every problem in the file, each naming its key path and the bad value.
    """
    path = Path(path)
    source = str(path)
    data, problems = read_yaml(path, what="scenario")
    try:
        scenario = scenario_from_dict(data, source=source, base_dir=path.resolve().parent)
    except ScenarioError as exc:
        # a non-finite number the loader named already: not again as pydantic's finite_number
        named = {p.split(": ", 1)[0] for p in problems}
        rest = [
            p for p in exc.problems if not (p.split(": ", 1)[0] in named and "finite number" in p)
        ]
        raise ScenarioError(problems + rest) from None
    if problems:
        raise ScenarioError(problems)
    return scenario.model_copy(update={"source": path.resolve()})
