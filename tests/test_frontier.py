"""Trade-off curves: never decreasing, the scenario's own choice on the curve, files written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carecheck import ScenarioError, run_scenario
from carecheck.frontier import frontier, knee, parse_series, write_frontier

from .conftest import EXAMPLE, PADDING_DEMAND, PADDING_SITES


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


def test_count_frontier_pads_as_a_run_does(make_case, tmp_path):
    """Counts beyond what adds anyone: each point is solved as "at most" and padded with the
    cheapest closed sites, then by candidate order — the plan ``carecheck run`` gives at that
    count, its padded sites marked in frontier_sites.csv and counted in frontier.csv."""
    path = make_case(
        PADDING_DEMAND, {"home": {"radius_m": 500, "count": 4, "candidates": PADDING_SITES}}
    )
    table = frontier(path, type_name="home", counts=[1, 2, 3, 4, 5])
    assert table["objective"].tolist() == [20, 30, 30, 30, 30]
    assert table["sites"].tolist() == [1, 2, 3, 4, 5]
    by_rule = ["s4", "s3", "s5"]  # the padding order: cost 1, then cost 3 by candidate order
    for value, open_sites, n_padded in zip(
        table["value"], table["open_sites"], table["padded"], strict=True
    ):
        ids = [s["id"] for s in open_sites]
        padded = sorted(s["id"] for s in open_sites if s["padded"])
        solved = [i for i in ids if i not in padded]
        assert len(padded) == n_padded and len(ids) == value
        assert value < 2 or {"s1", "s2"} <= set(solved)
        # the padded sites: the first of the rule's order among those the solver left closed
        closed = [i for i in by_rule if i not in solved]
        assert padded == sorted(closed[: len(padded)])
    # solved as "at most": the solver opens what adds someone (and may open more), the rest
    # is padding; solved as asked nothing would be padded
    assert table["padded"].sum() >= 1
    alone = run_scenario(path, write=False)
    assert table.loc[table["value"] == 4, "objective"].item() == alone.objective
    write_frontier(table, tmp_path / "f", x_label="home sites", chosen=4, title="case")
    written = pd.read_csv(tmp_path / "f" / "frontier_sites.csv", encoding="utf-8-sig", dtype=str)
    at_four = written[written["value"].astype(float) == 4]
    at_four_open = [s["id"] for s in table.loc[table["value"] == 4, "open_sites"].item()]
    assert sorted(at_four["id"]) == sorted(at_four_open)
    assert sorted(at_four.loc[at_four["padded"] == "True", "id"]) == sorted(
        s["id"] for s in table.loc[table["value"] == 4, "open_sites"].item() if s["padded"]
    )
    assert set(written["padded"]) <= {"True", "False"}
