"""Shared fixtures: paths, and a factory for small scenarios written to a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import yaml
from shapely.geometry import Point

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BENCHDATA = SHARED / "benchdata"
EXAMPLE = ROOT / "scenarios" / "example.yaml"

# A local metric CRS (UTM 51N, Ningbo): hand-made test points are given in metres.
METRIC = "EPSG:32651"

# a hand instance where two sites cover everyone reachable (30 of 37), for counts beyond that:
# padding takes the cheapest of the rest (s4 at 1), then candidate order (s3 before s5)
PADDING_DEMAND = [
    {"id": "a", "x": 0.0, "y": 0.0, "w": 10, "region": "东区"},
    {"id": "b", "x": 2000.0, "y": 0.0, "w": 20, "region": "东区"},
    {"id": "c", "x": 9000.0, "y": 0.0, "w": 7, "region": "西区"},  # beyond every site's reach
]
PADDING_SITES = [
    {"id": "s1", "x": 0.0, "y": 100.0, "cost": 50},  # reaches a
    {"id": "s2", "x": 2000.0, "y": 100.0, "cost": 50},  # reaches b
    {"id": "s3", "x": 2100.0, "y": 0.0, "cost": 3},  # reaches b: nothing once s2 is open
    {"id": "s4", "x": 5000.0, "y": 0.0, "cost": 1},  # reaches no one
    {"id": "s5", "x": 5500.0, "y": 0.0, "cost": 3},  # reaches no one
]


def points_layer(rows: list[dict[str, Any]], *, crs: str = METRIC) -> gpd.GeoDataFrame:
    """Rows with ``x``, ``y`` (metres) and attributes → a point GeoDataFrame."""
    geometry = [Point(r["x"], r["y"]) for r in rows]
    data = [{k: v for k, v in r.items() if k not in ("x", "y")} for r in rows]
    return gpd.GeoDataFrame(data, geometry=geometry, crs=crs)


def write_scenario(folder: Path, body: dict[str, Any], name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def make_case(tmp_path: Path):
    """Write demand and site layers (GeoJSON) plus a scenario; returns the scenario path.

    ``facilities`` maps type → dict with ``candidates`` rows, optional ``existing`` rows and
    any further facility keys (radius_m, count, tiers, ...).
    """

    def make(
        demand: list[dict[str, Any]],
        facilities: dict[str, dict[str, Any]],
        **scenario: Any,
    ) -> Path:
        gpd_demand = points_layer(demand)
        gpd_demand.to_file(tmp_path / "demand.geojson", driver="GeoJSON", engine="pyogrio")
        demand_spec: dict[str, Any] = {"path": "demand.geojson", "id": "id", "weight": "w"}
        if any("region" in r for r in demand):
            demand_spec["region"] = "region"
        body: dict[str, Any] = {
            "name": "case",
            "crs": METRIC,
            "demand": demand_spec,
            "facilities": {},
        }
        for type_name, spec in facilities.items():
            spec = dict(spec)
            cand_rows = spec.pop("candidates")
            existing_rows = spec.pop("existing", None)
            cand_file = f"{type_name}_candidates.geojson"
            points_layer(cand_rows).to_file(
                tmp_path / cand_file, driver="GeoJSON", engine="pyogrio"
            )
            mapping = {"path": cand_file, "id": "id"}
            for key in ("tier", "cost", "region", "action", "beds", "name"):
                if any(key in r for r in cand_rows):
                    mapping[key] = key
            entry: dict[str, Any] = {**spec, "candidates": mapping}
            if existing_rows:
                existing_file = f"{type_name}_existing.geojson"
                points_layer(existing_rows).to_file(
                    tmp_path / existing_file, driver="GeoJSON", engine="pyogrio"
                )
                existing_mapping = {"path": existing_file, "id": "id"}
                for key in ("tier", "beds", "region", "name"):
                    if any(key in r for r in existing_rows):
                        existing_mapping[key] = key
                entry["existing"] = existing_mapping
            body["facilities"][type_name] = entry
        body.update(scenario)
        return write_scenario(tmp_path, body)

    return make
