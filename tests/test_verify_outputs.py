"""`carecheck verify OUTDIR`: inputs unchanged first, moved folders, claims against a re-solve."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from carecheck.cli import main
from carecheck.pipeline import run_scenario

ROOT = Path(__file__).resolve().parents[1]


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


@pytest.fixture
def project(tmp_path):
    """A planner's project folder: scenario, data and outputs side by side."""
    folder = tmp_path / "项目 A"
    shutil.copytree(ROOT / "geodata" / "example", folder / "data")
    text = (ROOT / "scenarios" / "example.yaml").read_text(encoding="utf-8")
    (folder / "example.yaml").write_text(
        text.replace("../geodata/example/", "data/"), encoding="utf-8"
    )
    return folder


def _run(project: Path, scenario: str = "example.yaml") -> Path:
    out = project / "outputs" / "run"
    run_scenario(project / scenario, out=out, map_html=False)
    return out


def test_result_records_every_input_relative_to_the_folder(project):
    out = _run(project)
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    inputs = {item["role"]: item for item in document["inputs"]}
    assert set(inputs) == {
        "scenario",
        "demand",
        "facilities.institution.candidates",
        "facilities.institution.existing",
        "facilities.embedded.candidates",
        "regions",
    }
    assert inputs["scenario"]["path"] == "../../example.yaml"
    assert inputs["demand"]["path"] == "../../data/demand.csv"
    data = (project / "data" / "demand.csv").read_bytes()
    assert inputs["demand"]["size"] == len(data)
    import hashlib

    assert inputs["demand"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_changed_input_is_named_before_anything_else(project, capsys):
    out = _run(project)
    path = project / "data" / "demand.csv"
    path.write_bytes(
        path.read_bytes().replace(b",17\r\n", b",18\r\n", 1).replace(b",17\n", b",18\n", 1)
    )
    code, _, err = _cli(capsys, "verify", str(out), "--no-solve")
    assert code == 2
    assert "the inputs changed since the run" in err
    assert f"demand: {path} changed since the run" in err
    assert "Traceback" not in err


def test_a_moved_project_still_verifies(project, tmp_path, capsys):
    _run(project)
    moved = tmp_path / "elsewhere" / "项目 B"
    shutil.move(project, moved)
    code, out, err = _cli(capsys, "verify", str(moved / "outputs" / "run"), "--no-solve")
    assert code == 0, err
    assert "inputs unchanged" in out


def test_a_folder_moved_alone_needs_scenario(project, tmp_path, capsys):
    out = _run(project)
    alone = tmp_path / "handed over"
    shutil.move(out, alone)
    (project / "example.yaml").rename(project / "renamed.yaml")
    code, _, err = _cli(capsys, "verify", str(alone), "--no-solve")
    assert code == 2
    assert "give --scenario FILE" in err
    code, _, err = _cli(
        capsys, "verify", str(alone), "--no-solve", "--scenario", str(project / "renamed.yaml")
    )
    assert code == 0, err


def test_a_worse_plan_labelled_optimal_fails_the_fresh_solve(project, capsys):
    # a valid plan of the scenario that is not its optimum: the optimum under one more quota
    base_out = _run(project)
    base = json.loads((base_out / "result.json").read_text(encoding="utf-8"))
    text = (project / "example.yaml").read_text(encoding="utf-8")
    variant = text.replace(
        "region_min_sites: {institution: 1}", "region_min_sites: {institution: 1, embedded: 1}"
    )
    assert variant != text
    (project / "variant.yaml").write_text(variant, encoding="utf-8")
    worse_out = project / "outputs" / "worse"
    worse = run_scenario(project / "variant.yaml", out=worse_out, map_html=False)
    assert worse.objective < base["objective"] - 1  # precondition: a strictly worse plan
    document = json.loads((worse_out / "result.json").read_text(encoding="utf-8"))
    document["inputs"] = base["inputs"]  # "hand-edited": it now claims the base scenario
    document["scenario_file"] = base["scenario_file"]
    assert document["status"] == "optimal"
    (worse_out / "result.json").write_text(json.dumps(document), encoding="utf-8")
    code, _, err = _cli(capsys, "verify", str(worse_out), "--no-solve")
    assert code == 0, err  # the plan itself is feasible and its figures are right
    code, _, err = _cli(capsys, "verify", str(worse_out))
    assert code == 5
    assert (
        f"status: the result claims its plan is optimal with objective {worse.objective:,.3f}, "
        f"but a fresh solve finds a plan with {base['objective']:,.3f}"
    ) in err
    code, out, err = _cli(capsys, "verify", str(base_out))
    assert code == 0, err
    assert "a fresh solve confirms its status and bound" in out


def test_a_bound_below_a_real_plan_fails(project, capsys):
    out = _run(project)
    path = out / "result.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["status"] = "time_limit"
    document["bound"] = document["objective"] - 10  # no plan could reach its own value
    path.write_text(json.dumps(document), encoding="utf-8")
    code, _, err = _cli(capsys, "verify", str(out))
    assert code == 5
    assert "bound: the result claims that no plan reaches past" in err
