"""The objective registry: the built-in kinds, and a new objective added as one module.

The toy objective below is everything a new ``objective.kind`` takes: one class on the
:class:`~carecheck.objectives.base.Objective` protocol and one registry entry (here
:func:`carecheck.objectives.register`; a built-in would add one line to ``KINDS``). It is run
end to end through the command line, verified and written like any other.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from carecheck import objectives
from carecheck.cli import main
from carecheck.objectives.base import Objective, Solved, Stages

SRC = Path(__file__).resolve().parents[1] / "src" / "carecheck"


class CoveredUnits(Objective):
    """Maximise the number of demand units within reach, whatever their weight."""

    kind: ClassVar[str] = "covered_units"
    partitionable: ClassVar[bool] = False  # partition classes sum weights, not units
    verifies_value: ClassVar[bool] = False  # the verifier sums weights; units are counted here

    def solve(self, scenario, layers, problem, options, stages: Stages) -> Solved:
        unweighted = dataclasses.replace(problem, weight=np.ones(problem.n_demand))
        return super().solve(scenario, layers, unweighted, options, stages)

    def value(self, scenario, coverage, selected, outcome) -> float:
        return float(round(outcome.objective or 0.0))

    def plan_problems(
        self, scenario, layers, verification, value, beds: Callable[[], dict | None]
    ) -> list[str]:
        units = sum(int(c.covered_after.sum()) for c in verification.coverage.values())
        if value is not None and units != value:
            return [f"units covered: the result says {value:g}, a recount gives {units}"]
        return []


# A heavy village alone at 0; three light ones around 2,400 m. One site of reach 600 m.
DEMAND = [
    {"id": "A", "x": 0, "y": 0, "w": 10},
    {"id": "B", "x": 2000, "y": 0, "w": 1},
    {"id": "C", "x": 2400, "y": 0, "w": 1},
    {"id": "D", "x": 2800, "y": 0, "w": 1},
]
SITES = [{"id": "s1", "x": 0, "y": 0}, {"id": "s2", "x": 2400, "y": 0}]


@pytest.fixture
def toy():
    objectives.register(CoveredUnits())
    yield
    objectives.unregister("covered_units")


def run(path: Path, out: Path, capsys) -> tuple[int, str, dict | None]:
    """``carecheck run`` through the CLI's entry point, in this process (where the toy is)."""
    with pytest.raises(SystemExit) as exited:
        main(["run", str(path), "--out", str(out), "--no-map"])
    captured = capsys.readouterr()
    document = None
    if (out / "result.json").exists():
        document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    return int(exited.value.code or 0), captured.out + captured.err, document


def test_a_registered_objective_runs_end_to_end(make_case, tmp_path, toy, capsys):
    facilities = {"home": {"radius_m": 600, "count": 1, "candidates": SITES}}
    path = make_case(DEMAND, facilities, objective={"kind": "covered_units"})
    code, output, document = run(path, tmp_path / "units", capsys)
    assert code == 0, output
    assert "verified: yes" in output
    assert document is not None and document["objective_kind"] == "covered_units"
    # by hand: s1 covers A (1 unit, 10 elderly), s2 covers B, C, D (3 units, 3 elderly)
    assert [s["id"] for s in document["selected"]] == ["s2"]
    assert document["objective"] == 3 and document["status"] == "optimal"
    # the same places by weight choose the other site
    weighted = make_case(DEMAND, facilities)
    code, output, document = run(weighted, tmp_path / "weight", capsys)
    assert code == 0, output
    assert document is not None and [s["id"] for s in document["selected"]] == ["s1"]
    assert document["objective"] == 10


def test_kinds_come_from_the_registry(make_case, tmp_path, toy, capsys):
    assert objectives.kinds()[:4] == ("max_coverage", "min_sites", "capacitated", "min_distance")
    assert "covered_units" in objectives.kinds()
    objectives.unregister("covered_units")
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "count": 1, "candidates": SITES}},
        objective={"kind": "covered_units"},
    )
    code, output, _ = run(path, tmp_path / "out", capsys)
    assert code == 2, output
    assert "objective.kind: Input should be 'max_coverage', 'min_sites'" in output
    assert "(got: 'covered_units')" in output


def test_every_builtin_kind_has_its_module():
    for kind in objectives.KINDS:
        objective = objectives.get(kind)
        assert objective.kind == kind
        assert isinstance(objective, Objective)
    with pytest.raises(KeyError, match="unknown objective 'nope'"):
        objectives.get("nope")


def test_no_module_outside_objectives_compares_objective_names():
    names = set(objectives.KINDS)
    for path in SRC.rglob("*.py"):
        if "objectives" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    for inner in ast.walk(side):
                        if isinstance(inner, ast.Constant) and inner.value in names:
                            raise AssertionError(
                                f"{path.relative_to(SRC)}:{node.lineno} compares {inner.value!r}"
                            )
