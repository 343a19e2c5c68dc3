"""The command line: exit codes, one clear message per error, atomic outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from carecheck import handout
from carecheck.cli import main

from .conftest import EXAMPLE


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``carecheck`` in a subprocess (the real entry point, real exit codes)."""
    proc = subprocess.run(
        [sys.executable, "-m", "carecheck", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_run_validate_verify(tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = cli("run", str(EXAMPLE), "--out", str(out), "--solver", "highs")
    assert code == 0, stderr
    assert "status optimal" in stdout and "verified: yes" in stdout
    assert json.loads((out / "result.json").read_text(encoding="utf-8"))["solver"] == "highs"
    code, stdout, _ = cli("validate", str(EXAMPLE))
    assert code == 0 and "1,229 demand units" in stdout
    code, stdout, _ = cli("verify", str(out))
    assert code == 0 and "checks out" in stdout


def test_verify_detects_tampering(tmp_path):
    out = tmp_path / "run"
    assert cli("run", str(EXAMPLE), "--out", str(out))[0] == 0
    path = out / "result.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["coverage"]["types"]["institution"]["covered_after"] += 100
    document["selected"] = document["selected"][1:]  # one site fewer than the count
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    code, _, stderr = cli("verify", str(out))
    assert code == 5
    assert "institution count: 3 opened, exactly 4 required" in stderr
    assert "institution covered_after: result says" in stderr


def test_bad_scenario_exit_2_without_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nfacilities: {}\nsolver: {name: gurobi}\n", encoding="utf-8")
    code, stdout, stderr = cli("run", str(path))
    assert code == 2
    assert "Traceback" not in stderr + stdout
    assert "bad.yaml → demand: Field required" in stderr
    assert "bad.yaml → solver.name:" in stderr


def test_validate_reports_every_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n", encoding="utf-8")
    code, stdout, stderr = cli("validate", str(EXAMPLE), str(bad))
    assert code == 2
    assert "✓" in stdout and "bad.yaml" in stderr


def test_infeasible_exit_3_with_diagnosis(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace("budget: 12000", "budget: 1000")
    text = text.replace("../geodata/", f"{(EXAMPLE.parent.parent / 'geodata').as_posix()}/")
    path = tmp_path / "tight.yaml"
    path.write_text(text, encoding="utf-8")
    code, _, stderr = cli("run", str(path), "--out", str(tmp_path / "o"))
    assert code == 3
    assert "infeasible" in stderr and "constraints.budget (1000)" in stderr
    assert "cheapest plan meeting the other constraints costs" in stderr
    assert not (tmp_path / "o").exists()


def test_usage_errors_exit_2(tmp_path):
    code, _, stderr = cli("run", str(EXAMPLE), "--solver", "gurobi")
    assert code == 2 and "gurobi" in stderr
    code, _, stderr = cli("verify", str(tmp_path))
    assert code == 2 and "result.json: not found" in stderr


def test_unexpected_error_one_line_and_log(tmp_path, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("carecheck.pipeline.run_scenario", boom)
    with pytest.raises(SystemExit) as info:
        main(["run", str(EXAMPLE)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "unexpected error: RuntimeError: disk on fire (details:" in err
    assert "Traceback" not in err
    log = err.split("(details: ")[1].split(")")[0]
    assert "RuntimeError: disk on fire" in Path(log).read_text(encoding="utf-8")


def test_failed_write_leaves_previous_outputs(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["run", str(EXAMPLE), "--out", str(out)])
    assert info.value.code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(folder, **kwargs):  # the last file a run writes
        raise OSError("no space left on device")

    monkeypatch.setattr(handout, "write_docx", broken)
    with pytest.raises(SystemExit) as info:
        main(["run", str(EXAMPLE), "--out", str(out), "--solver", "highs"])
    assert info.value.code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("run", ".run.lock")]
    assert leftovers == []


def test_version():
    code, stdout, _ = cli("--version")
    assert code == 0 and "carecheck" in stdout


def test_no_map_and_redraw_map(tmp_path):
    out = tmp_path / "run"
    code, _, stderr = cli("run", str(EXAMPLE), "--out", str(out), "--no-map")
    assert code == 0, stderr
    assert not (out / "map.html").exists()
    code, stdout, stderr = cli("map", str(out), "--lang", "en", "--offline")
    assert code == 0, stderr
    page = (out / "map.html").read_text(encoding="utf-8")
    assert f"written: {out / 'map.html'}" in stdout and "plan.xlsx" in stdout
    assert "Elderly covered" in page or "elderly" in page.lower()
    assert "https://unpkg.com" not in page and "cdn.jsdelivr.net" not in page
    code, _, stderr = cli("map", str(tmp_path / "nothing"))
    assert code == 2 and "result.json" in stderr
