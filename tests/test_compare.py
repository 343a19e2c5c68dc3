"""compare: two known runs side by side."""

from __future__ import annotations

import pytest

from carecheck.cli import main
from carecheck.finished import compare_outputs

from .test_model_cases import DEMAND, S1, S2, S3


def test_compare_two_known_runs(make_case, tmp_path, capsys):
    from carecheck import run_scenario

    # count 1 opens s1 (A, B: 8); count 2 opens s1 + s3 (14)
    one = make_case(DEMAND, {"home": {"radius_m": 600, "count": 1, "candidates": [S1, S2, S3]}})
    run_scenario(one, out=tmp_path / "one")
    two = make_case(DEMAND, {"home": {"radius_m": 600, "count": 2, "candidates": [S1, S2, S3]}})
    run_scenario(two, out=tmp_path / "two")
    comparison = compare_outputs(tmp_path / "one", tmp_path / "two")
    assert comparison["types"]["home"] == {"baseline": 8.0, "this": 14.0}
    assert comparison["sites"] == {"common": 1, "only_baseline": [], "only_this": ["home:s3"]}
    assert comparison["sites_opened"] == {"baseline": 1, "this": 2}
    south = next(r for r in comparison["by_region"] if r["region"] == "south")
    assert south["types"]["home"] == {"baseline": 0.0, "this": 6.0}
    with pytest.raises(SystemExit) as info:
        main(
            [
                "compare",
                str(tmp_path / "one"),
                str(tmp_path / "two"),
                "--markdown",
                str(tmp_path / "c.md"),
            ]
        )
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "home covered" in out and "+6" in out
    markdown = (tmp_path / "c.md").read_text(encoding="utf-8")
    assert "| home | 8 (44.4%) | 14 (77.8%) | +6 |" in markdown
    assert "Sites only here: home:s3" in markdown
