"""The value a run returns: the plan, its coverage, the verification and the timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from carecheck import __version__, schema
from carecheck.config import Scenario
from carecheck.data import Layers
from carecheck.outdir import portable_path
from carecheck.verify import Verification


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced. ``out_dir`` is None when nothing was written."""

    scenario: Scenario
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    selected: pd.DataFrame
    coverage: dict
    demand: pd.DataFrame
    verification: Verification
    timings: dict[str, float]
    model_size: dict[str, int]
    total_cost: float
    layers: Layers = field(repr=False)
    out_dir: Path | None = None
    comparison: dict | None = None
    network: dict | None = None
    beds: dict | None = None
    reach_areas: gpd.GeoDataFrame | None = field(default=None, repr=False)
    inputs: list[dict] = field(default_factory=list, repr=False)
    checks: dict | None = None  # idle sites and unreachable demand (report.plan_checks)
    # sites opened only to meet a count, cheapest first (model.pad_counts); None when none
    padding: dict | None = None
    created: str = field(default_factory=lambda: date.today().isoformat())

    def to_json(self) -> dict:
        """The ``result.json`` document."""
        scenario = self.scenario
        types = {}
        for name, spec in scenario.facilities.items():
            opened = int((self.selected["type"] == name).sum())
            types[name] = {
                "radius_m": spec.radius_m,
                "reach": spec.reach_of(None)._asdict() if spec.own_reach else None,
                "tier_reach": {t: spec.reach_of(t)._asdict() for t in (spec.tiers or {})},
                "reach_label": spec.reach_label(),
                "count_asked": {
                    "count": spec.count,
                    "min_count": spec.min_count,
                    "max_count": spec.max_count,
                },
                "tier_count_asked": {
                    t: {"count": ts.count, "min_count": ts.min_count, "max_count": ts.max_count}
                    for t, ts in (spec.tiers or {}).items()
                },
                "count_opened": opened,
                "tier_count_opened": {
                    t: int(((self.selected["type"] == name) & (self.selected["tier"] == t)).sum())
                    for t in (spec.tiers or {})
                },
                "candidates": len(self.layers.facilities[name].candidates),
                "existing": len(self.layers.facilities[name].existing),
                "objective_weight": scenario.alpha(name),
                "basis": spec.basis,
                "tier_basis": {t: scenario.basis_of(name, t) for t in (spec.tiers or {})},
            }
        selected = [
            {k: json_value(v) for k, v in row.items()}
            for row in self.selected.drop(columns=["x", "y"]).to_dict(orient="records")
        ]
        existing = []
        for name, layers in self.layers.facilities.items():
            frame = layers.existing
            if not len(frame):
                continue
            lonlat = frame.geometry.to_crs(4326)
            for row, lon, lat in zip(
                frame.drop(columns="geometry").to_dict(orient="records"),
                lonlat.x.round(6),
                lonlat.y.round(6),
                strict=True,
            ):
                row |= {"type": name, "lon": float(lon), "lat": float(lat)}
                existing.append({k: json_value(row[k]) for k in schema.EXISTING})
        return {
            "scenario": scenario.name,
            "title": scenario.title,
            "scenario_file": str(scenario.source) if scenario.source else None,
            "objective_kind": scenario.objective.kind,
            "status": self.status,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "solver": scenario.solver.name,
            "solver_settings": scenario.solver.model_dump(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "types": types,
            "selected": selected,
            "existing": existing,
            "coverage": self.coverage,
            "total_cost": self.total_cost,
            "budget": scenario.constraints.budget,
            "constraints": scenario.constraints.model_dump(),
            "model_size": self.model_size,
            "crs": self.layers.crs.to_string(),
            "verification": {"ok": self.verification.ok, "problems": self.verification.problems},
            "comparison": self.comparison,
            "network": self.network,
            "beds": self.beds,
            "carecheck_version": __version__,
            "inputs": self._inputs(),
            "layers": self._layers(),
            "plan_checks": self.checks,
            "count_padding": self.padding,
            "lang": scenario.language,
            "cost_unit": scenario.cost_unit,
            "outputs": scenario.outputs.model_dump()
            | {"crs": scenario.outputs.crs or self.layers.crs.to_string()},
            "created": self.created,
            "objective_settings": scenario.objective.model_dump(mode="json"),
        }

    def _layers(self) -> dict[str, dict]:
        """How each layer was read: file, sheet or layer, encoding, CRS, coordinate
        conversion, rows read and kept."""
        out = {}
        for role, source in self.layers.sources.items():
            record = source.to_json()
            if self.out_dir is not None:
                record["path"] = portable_path(Path(record["path"]), self.out_dir)
            record["columns"] = self._columns(role)
            out[role] = record
        return out

    def _columns(self, role: str) -> dict[str, str]:
        """The planner's own column of each attribute the layer ``role`` maps (村名 for name)."""
        if role == "demand":
            spec, names = self.scenario.demand, ("id", *schema.DEMAND_MAPPED)
        elif role.startswith("facilities."):
            _, type_name, kind = role.split(".")
            spec = getattr(self.scenario.facilities[type_name], kind)
            names = ("id", *schema.SITE_MAPPED)
        else:
            return {}
        found = {name: getattr(spec, name, None) for name in names}
        return {name: str(column) for name, column in found.items() if column is not None}

    def _inputs(self) -> list[dict]:
        """Every input file's role, size and SHA-256; its path relative to the output folder
        where it can be (so that a folder moved with its data still verifies)."""
        return [
            {
                "role": item["role"],
                "path": portable_path(item["path"], self.out_dir)
                if self.out_dir is not None
                else Path(item["path"]).as_posix(),
                "size": item["size"],
                "sha256": item["sha256"],
            }
            for item in self.inputs
        ]


def json_value(value: object) -> object:
    """A value as JSON holds it: numpy scalars as Python ones, NaN and ±inf as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
