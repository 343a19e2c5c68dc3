"""Trade-off curves: never decreasing, the scenario's own choice on the curve, files written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carecheck import ScenarioError, run_scenario
from carecheck.frontier import frontier, knee, parse_series, write_frontier

from .conftest import EXAMPLE


def test_parse_series():
    assert parse_series("0..4") == [0, 1, 2, 3, 4]
    assert parse_series("10..40..10") == [10, 20, 30, 40]
    assert parse_series("30,10,20") == [10, 20, 30]
    with pytest.raises(ScenarioError, match=r"START\.\.STOP"):
        parse_series("ten")


def test_count_frontier_never_decreases_and_matches_single_runs(tmp_path):
    table = frontier(EXAMPLE, type_name="embedded", counts=[0, 1, 2, 3, 4, 6])
    assert (table["status"] == "optimal").all()
    assert (np.diff(table["objective"]) >= -1e-9).all()
    assert (table["sites"] - table["value"] == 4).all()  # 4 institutions every time
    # the scenario's own choice (3 embedded homes) equals a plain run of the scenario
    alone = run_scenario(EXAMPLE, write=False)
    assert table.loc[table["value"] == 3, "objective"].item() == pytest.approx(alone.objective)
    csv_path, png_path = write_frontier(
        table, tmp_path, x_label="embedded sites", chosen=3, title="example"
    )
    written = pd.read_csv(csv_path, encoding="utf-8-sig")
    assert written["knee"].sum() <= 1 and len(written) == 6
    assert "open_sites" not in written.columns
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # frontier_sites.csv: the sites open at each point; at the scenario's own 3, its plan
    sites = pd.read_csv(tmp_path / "frontier_sites.csv", encoding="utf-8-sig", dtype=str)
    assert sites.groupby("value").size().tolist() == [v + 4 for v in (0, 1, 2, 3, 4, 6)]
    at_three = sites[sites["value"].astype(float) == 3]
    assert sorted(at_three["type"] + ":" + at_three["id"]) == sorted(
        alone.selected["type"] + ":" + alone.selected["id"]
    )


def test_frontier_plot_starts_at_zero_and_shows_the_type(tmp_path, monkeypatch):
    import matplotlib.axes

    table = frontier(EXAMPLE, type_name="embedded", counts=[1, 2, 3])
    drawn = {}
    original = matplotlib.axes.Axes.set_ylim

    def spy(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        drawn["ylim"] = self.get_ylim()
        drawn["labels"] = [line.get_label() for line in self.get_lines()]
        return result

    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylim", spy)
    write_frontier(
        table, tmp_path, x_label="x", chosen=3, title="t", lang="en", type_name="embedded"
    )
    assert drawn["ylim"][0] == 0
    assert drawn["labels"] == ["elderly covered by community-embedded home"]  # that type only


def test_budget_frontier_never_decreases():
    table = frontier(EXAMPLE, budgets=[10000, 11000, 12000, 14000])
    feasible = table[table["status"] == "optimal"]
    assert len(feasible) >= 3
    assert (np.diff(feasible["objective"]) >= -1e-9).all()
    assert (feasible["total_cost"] <= feasible["value"] + 1e-9).all()


def test_knee_is_the_bend():
    values = np.array([0, 1, 2, 3, 4, 5], float)
    covered = np.array([0, 70, 85, 92, 96, 100], float)
    assert knee(values, covered) == 1
    assert knee(values, values) is None  # a straight line has no knee
