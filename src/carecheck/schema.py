"""The one list of demand and site attributes, and which of them each output carries.

Every attribute a demand unit or a site has is declared here once: its name (carecheck's
column in the layer frames and the key in ``result.json``), whether it is text, a value from a
vocabulary (translated on the map) or a number, where its values come from, its value when the
planner's file has no such column, and its label key in :mod:`carecheck.labels`. The readers
(:mod:`carecheck.data`), the problem arrays (:mod:`carecheck.assemble`), the verifier's plan
(:mod:`carecheck.plans`), ``result.json`` (:mod:`carecheck.result`), the CSV and GeoJSON
(:mod:`carecheck.report`) and the map's popups (:mod:`carecheck.maps`) take their columns from
the views below, so adding an attribute read from the planner's files (say ``nursing_beds``)
is one :class:`Attribute`, its name in the views that should carry it, and a key of the same
name in the scenario's column mapping (:class:`carecheck.config.SiteSpec`; a test checks that
every mapped attribute has one).

Each output keeps the column order it has always had; the views state those orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Attribute:
    """One attribute of a demand unit or a site.

    ``kind``: ``text`` (shown as it is), ``word`` (a value from a vocabulary — type, tier,
    action — shown through its display name) or ``number``. ``origin``: ``column`` (read from
    the planner's column that the scenario key of the same name maps), ``id`` (the row's id),
    ``type`` (the facility type), ``reach`` (from the type's and tier's reach rules), ``plan``
    (computed from the plan) or ``place`` (the point's position). ``blank`` is the value of a
    ``column`` attribute whose column is not mapped. ``digits``: decimals shown for a number.
    """

    name: str
    kind: Literal["text", "word", "number"]
    origin: Literal["column", "id", "type", "reach", "plan", "place"]
    blank: float | str | None = None
    label: str | None = None
    digits: int = 0
    doc: str = ""

    def array(self, frame) -> np.ndarray:
        """The attribute's column of ``frame`` as numpy holds it: floats or objects."""
        return frame[self.name].to_numpy(float if self.kind == "number" else object)

    def counted(self, frame) -> np.ndarray:
        """As :meth:`array`, with a number not given (NaN, e.g. blank beds) counted as 0: the
        values the model and the verifier work with."""
        values = self.array(frame)
        return np.nan_to_num(values) if self.kind == "number" else values


def _declare(*attributes: Attribute) -> dict[str, Attribute]:
    return {a.name: a for a in attributes}


NAN = float("nan")

SITE: dict[str, Attribute] = _declare(
    Attribute("id", "text", "id", label="id", doc="the planner's id, as text"),
    Attribute("type", "word", "type", label="type", doc="the facility type"),
    Attribute("name", "text", "column", label="name", doc="display name"),
    Attribute("tier", "word", "column", label="tier", doc="tier (county, town, village …)"),
    Attribute("action", "word", "column", label="action", doc="new or expand"),
    Attribute("cost", "number", "column", 0.0, "cost", 1, "cost, in the scenario's unit"),
    Attribute("beds", "number", "column", NAN, "beds", 0, "beds (blank: not given)"),
    Attribute("region", "text", "column", label="region", doc="region (district, town …)"),
    Attribute("reach_kind", "text", "reach", doc="radius_m, network_m or travel_min"),
    Attribute("reach_value", "number", "reach", doc="metres or minutes"),
    Attribute("reach_mode", "text", "reach", doc="walk or drive for travel_min, else ''"),
    Attribute("radius_m", "number", "reach", doc="straight-line radius (NaN for road reach)"),
    Attribute("lon", "number", "place", doc="longitude, WGS 84, 6 decimals"),
    Attribute("lat", "number", "place", doc="latitude, WGS 84, 6 decimals"),
    Attribute(
        "new_covered_weight",
        "number",
        "plan",
        label="new_covered",
        doc="elderly it reaches that no existing facility does",
    ),
    Attribute(
        "unique_covered_weight",
        "number",
        "plan",
        label="unique_covered",
        doc="of those, the ones no other opened site reaches",
    ),
    Attribute("priority", "number", "plan", doc="build order within its type, 1 first"),
    Attribute("marginal_weight", "number", "plan", doc="what it adds in the build order"),
)

DEMAND: dict[str, Attribute] = _declare(
    Attribute("id", "text", "id", label="id", doc="the planner's id, as text"),
    Attribute("weight", "number", "column", doc="elderly (after growth)"),
    Attribute("region", "text", "column", label="region", doc="region"),
    Attribute("name", "text", "column", label="name", doc="display name"),
)

# --------------------------------------------------------------------------- views

#: Site attributes read from the planner's columns (scenario keys of the same name).
SITE_MAPPED: tuple[str, ...] = tuple(n for n, a in SITE.items() if a.origin == "column")
#: Demand attributes read from the planner's columns.
DEMAND_MAPPED: tuple[str, ...] = ("weight", "region", "name")
#: A site layer frame's columns (candidates or existing), beside its geometry.
SITE_FRAME: tuple[str, ...] = tuple(n for n, a in SITE.items() if a.origin not in ("plan", "place"))
#: A demand layer frame.
DEMAND_FRAME: tuple[str, ...] = tuple(DEMAND)
#: A site's reach and place, as result.json's site lists give them.
_REACH_AND_PLACE: tuple[str, ...] = (
    "radius_m",
    "reach_kind",
    "reach_value",
    "reach_mode",
    "lon",
    "lat",
)
#: ``result.json`` ``selected[*]``, the GeoJSON's properties (without lon/lat) and the plan
#: frame, in this order.
SELECTED: tuple[str, ...] = (
    *("id", "type", "tier", "action", "name", "region", "cost", "beds"),
    *_REACH_AND_PLACE,
    *("new_covered_weight", "unique_covered_weight", "priority", "marginal_weight"),
)
#: ``result.json`` ``existing[*]``.
EXISTING: tuple[str, ...] = ("id", "type", "tier", "name", "beds", *_REACH_AND_PLACE)
#: ``demand_coverage.csv``'s leading columns (the covered flags per type follow); the id is
#: written as ``demand_id``.
DEMAND_TABLE: tuple[str, ...] = ("id", "name", "weight", "region", "lon", "lat")
DEMAND_TABLE_NAMES: dict[str, str] = {"id": "demand_id"}
#: The map's site popups, in order; ``reach`` is the reach text, ``region`` is left out when
#: blank. Selected sites show every row; existing ones those in ``POPUP_EXISTING``.
POPUP: tuple[str, ...] = (
    "id",
    "type",
    "tier",
    "action",
    "beds",
    "cost",
    "new_covered_weight",
    "unique_covered_weight",
    "reach",
    "region",
)
POPUP_EXISTING: frozenset[str] = frozenset({"id", "type", "tier", "beds", "reach", "region"})
#: The candidates' attributes the independent verifier's plan gets (``candidate_<name>``).
VERIFIED: tuple[str, ...] = ("tier", "cost", "beds", "region")


def site(name: str) -> Attribute:
    """The site attribute ``name``."""
    return SITE[name]
