"""The site schema: one declaration per attribute, and every output's columns derived from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from carecheck import schema
from carecheck.config import DemandSpec, SiteSpec
from carecheck.labels import LABELS

ROOT = Path(__file__).resolve().parents[1]


def test_every_mapped_attribute_has_its_scenario_key():
    assert set(schema.SITE_MAPPED) <= set(SiteSpec.model_fields)
    assert set(schema.DEMAND_MAPPED) <= set(DemandSpec.model_fields)


def test_views_name_only_declared_attributes():
    for view in (schema.SITE_FRAME, schema.SELECTED, schema.EXISTING, schema.VERIFIED):
        assert set(view) <= set(schema.SITE), view
    assert set(schema.POPUP) - {"reach"} <= set(schema.SITE)
    assert set(schema.POPUP) >= schema.POPUP_EXISTING
    assert set(schema.DEMAND_TABLE) - {"lon", "lat"} <= set(schema.DEMAND)


def test_every_label_key_is_in_both_languages():
    keys = {a.label for a in schema.SITE.values() if a.label} | {"radius"}
    for lang in LABELS:
        assert keys <= set(LABELS[lang]["ui"]), lang


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    from carecheck.cli import main

    out = tmp_path_factory.mktemp("schema") / "out"
    with pytest.raises(SystemExit) as stop:
        main(["run", str(ROOT / "scenarios" / "example.yaml"), "--out", str(out), "--no-map"])
    assert stop.value.code == 0
    return out


def test_outputs_carry_the_schema_columns_in_its_order(example_run):
    document = json.loads((example_run / "result.json").read_text(encoding="utf-8"))
    assert document["selected"] and document["existing"]
    for site in document["selected"]:
        assert list(site) == list(schema.SELECTED)
    for site in document["existing"]:
        assert list(site) == list(schema.EXISTING)
    features = json.loads((example_run / "selected_sites.geojson").read_text(encoding="utf-8"))[
        "features"
    ]
    expected = [c for c in schema.SELECTED if c not in ("lon", "lat")]
    assert [list(f["properties"]) for f in features] == [expected] * len(features)
    header = (example_run / "demand_coverage.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    leading = [schema.DEMAND_TABLE_NAMES.get(c, c) for c in schema.DEMAND_TABLE]
    assert header.split(",")[: len(leading)] == leading


def test_an_attribute_added_to_the_schema_reaches_result_json(tmp_path, monkeypatch):
    """Adding a site attribute read from the planner's column: one declaration plus its name in
    the views (here ``region`` re-declared under a view that did not carry it: existing)."""
    from carecheck.cli import main

    monkeypatch.setattr(schema, "EXISTING", (*schema.EXISTING, "region", "cost"))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["run", str(ROOT / "scenarios" / "example.yaml"), "--out", str(out), "--no-map"])
    assert stop.value.code == 0
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert all(list(e)[-2:] == ["region", "cost"] for e in document["existing"])
    shutil.rmtree(out)
