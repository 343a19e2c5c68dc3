"""Sweeps: equal to serial runs, failures isolated, reruns resume, lost workers retried."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from carecheck import run_scenario
from carecheck.config import scenario_from_dict
from carecheck.sweep import load_sweep, plan_jobs, run_sweep

from .conftest import EXAMPLE, ROOT
from .sweep_runners import slow_run

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning",
    "ignore::ResourceWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
)


def write_sweep(tmp_path, **body):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump({"name": "t", "out": "out", **body}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return load_sweep(path)


GRID = {"facilities.institution.count": [3, 4], "facilities.embedded.radius_m": [600, 800]}


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


def test_sweep_on_a_local_cluster_equals_serial_runs(tmp_path, cluster):
    _, client = cluster
    spec, folder = write_sweep(tmp_path, base=str(EXAMPLE), grid=GRID)
    table, out = run_sweep(spec, folder, client=client)
    assert len(table) == 4 and (table["status"] == "optimal").all()
    jobs, _ = plan_jobs(spec, folder)
    for job, row in zip(jobs, table.to_dict(orient="records"), strict=True):
        alone = run_scenario(scenario_from_dict(job.scenario, base_dir=Path("/")), write=False)
        assert row["objective"] == pytest.approx(alone.objective)
        assert row["total_cost"] == pytest.approx(alone.total_cost)
    written = pd.read_csv(out / "sweep.csv", encoding="utf-8-sig")
    assert list(written["facilities.institution.count"]) == [3, 3, 4, 4]
    assert (out / "sweep.png").exists() and (out / "sweep.md").exists()
    # the local pool gives the same table
    spec2, folder2 = write_sweep(tmp_path / "pool", base=str(EXAMPLE), grid=GRID)
    table2, _ = run_sweep(spec2, folder2, workers=2)
    assert list(table2["objective"]) == pytest.approx(list(table["objective"]))


def test_a_broken_run_is_isolated_and_a_rerun_resumes(tmp_path, cluster):
    _, client = cluster
    bad = tmp_path / "bad.yaml"
    text = EXAMPLE.read_text(encoding="utf-8").replace("../geodata/example/demand.csv", "bad.csv")
    text = text.replace("../geodata/", f"{(ROOT / 'geodata').as_posix()}/")
    bad.write_text(text, encoding="utf-8")
    (tmp_path / "bad.csv").write_text(
        "demand_id,lon,lat,elderly,district,name\nD1,121.5,29.8,-5,东湖区,x\n", encoding="utf-8"
    )
    spec, folder = write_sweep(tmp_path, scenarios=[str(EXAMPLE), str(bad)])
    table, _ = run_sweep(spec, folder, client=client)
    status = dict(zip(table["scenario"], table["status"], strict=True))
    assert status == {"example": "optimal", "bad": "error"}
    assert "must be a number ≥ 0" in table.loc[table["scenario"] == "bad", "error"].item()
    again, _ = run_sweep(spec, folder, client=client)
    reused = dict(zip(again["scenario"], again["reused"], strict=True))
    assert reused["example"] is True and reused["bad"] is not True  # errors run again


def test_a_worker_killed_mid_sweep_loses_no_result(tmp_path, cluster):
    local, client = cluster
    spec, folder = write_sweep(tmp_path, base=str(EXAMPLE), grid=GRID)
    results = {}

    def sweep():
        results["table"], _ = run_sweep(spec, folder, client=client, runner=slow_run)

    thread = threading.Thread(target=sweep)
    thread.start()
    time.sleep(1.0)  # both workers are inside a run now
    victim = next(iter(local.workers.values()))
    victim.process.process.kill()
    thread.join(timeout=120)
    table = results["table"]
    assert len(table) == 4 and (table["status"] == "optimal").all()


def test_cli_sweep_on_a_scheduler_address_and_serial_in_process(tmp_path, cluster):
    from click.testing import CliRunner

    from carecheck.cli import cli

    local, _ = cluster
    _, folder = write_sweep(tmp_path / "dask", base=str(EXAMPLE), grid=GRID)
    runner = CliRunner()
    by_address = runner.invoke(
        cli, ["sweep", str(folder / "sweep.yaml"), "--scheduler", local.scheduler_address]
    )
    assert by_address.exit_code == 0, by_address.output
    _, folder1 = write_sweep(tmp_path / "serial", base=str(EXAMPLE), grid=GRID)
    serial = runner.invoke(cli, ["sweep", str(folder1 / "sweep.yaml"), "--workers", "1"])
    assert serial.exit_code == 0, serial.output
    a = pd.read_csv(folder / "out" / "sweep.csv", encoding="utf-8-sig")
    b = pd.read_csv(folder1 / "out" / "sweep.csv", encoding="utf-8-sig")
    assert list(a["objective"]) == pytest.approx(list(b["objective"]))
    assert list(a["status"]) == list(b["status"]) == ["optimal"] * 4
