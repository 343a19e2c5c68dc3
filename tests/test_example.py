"""The shipped example runs end to end, verifies, and writes the whole output contract."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import carecheck
from carecheck.report import OUTPUT_FILES

from .conftest import EXAMPLE


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_example_runs_and_verifies(tmp_path, solver):
    out = tmp_path / "out"
    result = carecheck.run_scenario(EXAMPLE, out=out, solver=solver)
    assert result.status == "optimal"
    assert result.verification.ok
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES, "map.html"])
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert document["status"] == "optimal"
    assert document["gap"] == pytest.approx(0.0, abs=1e-9)
    opened = {t: v["count_opened"] for t, v in document["types"].items()}
    assert opened == {"institution": 4, "embedded": 3}
    cov = document["coverage"]
    # the objective is the covered weight after the plan, summed over types (weights 1)
    assert document["objective"] == pytest.approx(
        sum(v["covered_after"] for v in cov["types"].values())
    )
    assert carecheck.verify_outputs(out).ok
    table = pd.read_csv(out / "demand_coverage.csv", encoding="utf-8-sig")
    assert (table["weight"] * table["covered_after_institution"]).sum() == pytest.approx(
        cov["types"]["institution"]["covered_after"]
    )
    # UTF-8 with BOM, Chinese kept as characters
    raw = (out / "demand_coverage.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert "东湖区" in raw.decode("utf-8-sig")
    assert "东湖区" in (out / "result.json").read_text(encoding="utf-8")
