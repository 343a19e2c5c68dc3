"""The pipeline's partitioned path (large demand layers) gives the same run as the in-memory one."""

from __future__ import annotations

import json

import carecheck.assemble as assemble
from carecheck import run_scenario

from .conftest import EXAMPLE


def test_partitioned_run_equals_in_memory_run(monkeypatch):
    plain = run_scenario(EXAMPLE, write=False, compare=False)
    monkeypatch.setattr(assemble, "PARTITION_ABOVE", 0)
    split = run_scenario(EXAMPLE, write=False, compare=False)
    assert split.model_size["demand_units"] == plain.model_size["demand_units"]
    first, second = plain.to_json(), split.to_json()
    for key in ("timings", "model_size"):
        first.pop(key), second.pop(key)
    assert json.dumps(first, sort_keys=True, default=str) == json.dumps(
        second, sort_keys=True, default=str
    )
    assert split.demand.equals(plain.demand)
    assert split.selected.reset_index(drop=True).equals(plain.selected.reset_index(drop=True))


def test_partitioned_only_for_large_straight_line_layers(monkeypatch):
    from carecheck.config import load_scenario
    from carecheck.data import load_layers

    scenario = load_scenario(EXAMPLE)
    layers = load_layers(scenario)
    assert not assemble.partitioned(scenario, layers)
    monkeypatch.setattr(assemble, "PARTITION_ABOVE", 0)
    assert assemble.partitioned(scenario, layers)
