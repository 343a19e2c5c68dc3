"""A killed run leaves no worker processes; errors, signals and terminal text are safe."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from carecheck import cli
from carecheck.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "scenarios" / "example.yaml"

SEARCH = """
import numpy as np, scipy.sparse as sp
from carecheck.heuristic import swap_search
rng = np.random.default_rng(0)
reach = sp.random(20000, 2000, density=0.002, random_state=1, format="csr") > 0
print("searching", flush=True)
swap_search(reach, rng.random(20000), 20, seconds=120.0, workers=2, backend="numpy")
"""


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_search_leaves_no_workers(how):
    process = subprocess.Popen([sys.executable, "-c", SEARCH], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "searching"
        deadline = time.monotonic() + 60
        workers: list[psutil.Process] = []
        others: list[psutil.Process] = []
        while time.monotonic() < deadline:  # the spawned search worker (not the tracker)
            workers = [c for c in _children(process.pid) if "spawn_main" in " ".join(c.cmdline())]
            if workers:
                others = [c for c in _children(process.pid) if c not in workers]
                break
            time.sleep(0.2)
        assert workers, "no search worker was started"
        time.sleep(3)  # past its start-up: searching
        os.kill(process.pid, how)
        process.wait(30)
        everything = others + workers
        _, alive = psutil.wait_procs(everything, timeout=10)
        assert alive == [], f"workers still running: {alive}"
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()


def test_error_log_is_private_unique_and_not_in_shared_temp(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(cli.sys, "platform", "linux")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("carecheck.pipeline.run_scenario", broken)
    logs = []
    for _ in range(2):  # two errors in the same second get two files
        with pytest.raises(SystemExit) as info:
            main(["run", str(EXAMPLE), "--out", str(tmp_path / "out")])
        assert info.value.code == 1
        err = capsys.readouterr().err
        assert "unexpected error: RuntimeError: a bug (details: " in err
        logs.append(Path(err.split("(details: ")[1].rsplit(")", 1)[0]))
    folder = tmp_path / "state" / "carecheck"
    assert logs[0] != logs[1]
    assert all(log.parent == folder and log.is_file() for log in logs)
    assert "RuntimeError: a bug" in logs[0].read_text(encoding="utf-8")
    if sys.platform != "win32":
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_error_log_never_follows_a_planted_link(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(cli.sys, "platform", "linux")
    (tmp_path / "state").mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "state" / "carecheck").symlink_to(victim)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("carecheck.pipeline.run_scenario", broken)
    with pytest.raises(SystemExit) as info:
        main(["run", str(EXAMPLE)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "no log written" in err and "is not a real folder" in err
    assert list(victim.iterdir()) == []


def test_titles_are_printed_literally(tmp_path, capsys):
    text = EXAMPLE.read_text(encoding="utf-8")
    title = "规划方案 [/home/plan] [draft] [bold]x[/bold]"
    lines = [
        f'title: "{title}"' if line.startswith("title:") else line for line in text.splitlines()
    ]
    scenario = tmp_path / "s.yaml"
    scenario.write_text("\n".join(lines), encoding="utf-8")
    for name in ("demand.csv", "embedded_sites.geojson", "example.gpkg"):  # data beside it
        (tmp_path / name).symlink_to(ROOT / "geodata" / "example" / name)
    text = scenario.read_text(encoding="utf-8").replace("../geodata/example/", "")
    scenario.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["run", str(scenario), "--out", str(tmp_path / "out"), "--no-map"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert title in out


def test_a_failing_summary_after_the_write_still_exits_0(tmp_path, monkeypatch, capsys):
    def broken(result):
        raise ValueError("terminal too narrow")

    monkeypatch.setattr(cli, "_summary", broken)
    with pytest.raises(SystemExit) as info:
        main(["run", str(EXAMPLE), "--out", str(tmp_path / "out"), "--no-map"])
    assert info.value.code == 0
    assert "the plan is complete in" in capsys.readouterr().err
    assert (tmp_path / "out" / "result.json").is_file()
