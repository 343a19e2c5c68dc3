"""Output folders: carecheck replaces only what it wrote, one run at a time, nothing lost."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carecheck import outdir
from carecheck.cli import main
from carecheck.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "scenarios" / "example.yaml"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_foreign_folder_is_refused_and_untouched(tmp_path, capsys):
    folder = tmp_path / "规划资料 2026"
    (folder / "sub").mkdir(parents=True)
    (folder / "村名单.xlsx").write_bytes(b"planner's own file")
    (folder / "sub" / "notes.txt").write_text("keep me", encoding="utf-8")
    before = _snapshot(folder)
    code, _, err = _run(capsys, "run", str(EXAMPLE), "--out", str(folder), "--no-map")
    assert code == 2
    assert "is not a carecheck output folder" in err and str(folder) in err
    assert "Traceback" not in err
    assert _snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["规划资料 2026"]  # nothing beside it


def test_out_onto_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "plan.txt"
    target.write_text("a file", encoding="utf-8")
    code, _, err = _run(capsys, "run", str(EXAMPLE), "--out", str(target), "--no-map")
    assert code == 2
    assert "this is a file, not a folder" in err
    assert target.read_text(encoding="utf-8") == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.txt"]


def test_empty_folder_and_own_folder_are_replaced(tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = _run(capsys, "run", str(EXAMPLE), "--out", str(folder), "--no-map")
    assert code == 0, err
    assert (folder / outdir.MARKER).is_file() and (folder / "result.json").is_file()
    (folder / "stray.txt").write_text("x", encoding="utf-8")  # replaced with the folder
    code, _, err = _run(capsys, "run", str(EXAMPLE), "--out", str(folder), "--no-map")
    assert code == 0, err
    assert not (folder / "stray.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def test_marker_removed_means_never_replaced(tmp_path, capsys):
    folder = tmp_path / "out"
    assert _run(capsys, "run", str(EXAMPLE), "--out", str(folder), "--no-map")[0] == 0
    (folder / outdir.MARKER).unlink()
    before = _snapshot(folder)
    code, _, err = _run(capsys, "run", str(EXAMPLE), "--out", str(folder), "--no-map")
    assert code == 2 and "not a carecheck output folder" in err
    assert _snapshot(folder) == before


def test_filesystem_root_is_refused():
    with pytest.raises(DataError, match="filesystem root"):
        outdir.resolve_target(Path(Path.cwd().anchor))


def test_stale_temporary_folders_of_dead_runs_are_removed(tmp_path):
    target = tmp_path / "out"
    stale = [tmp_path / ".out.tmp-99999-abc", tmp_path / ".out.old-99999-def"]
    for folder in stale:
        folder.mkdir()
        (folder / "result.json").write_text("{}", encoding="utf-8")
    other = tmp_path / ".other.tmp-1-x"  # another output folder's: not ours to remove
    other.mkdir()
    with outdir.locked(target):
        outdir.write_folder(target, lambda f: (f / "a.txt").write_text("1", encoding="utf-8"))
    assert not any(p.exists() for p in stale)
    assert other.exists()
    assert (target / "a.txt").read_text(encoding="utf-8") == "1"


def test_failed_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "out"
    with outdir.locked(target):
        outdir.write_folder(target, lambda f: (f / "a.txt").write_text("old", encoding="utf-8"))
    before = _snapshot(target)

    def broken(folder: Path) -> None:
        (folder / "a.txt").write_text("new", encoding="utf-8")
        raise OSError("disk full")

    with outdir.locked(target), pytest.raises(OSError, match="disk full"):
        outdir.write_folder(target, broken)
    assert _snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def _hold_lock(target: str, ready, release) -> None:
    with outdir.locked(Path(target)):
        ready.set()
        release.wait(30)


def test_second_run_is_refused_while_the_folder_is_locked(tmp_path, capsys):
    target = tmp_path / "out"
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(target), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        code, _, err = _run(capsys, "run", str(EXAMPLE), "--out", str(target), "--no-map")
        assert code == 2
        assert f"another carecheck run (process {holder.pid}) is writing it" in err
        assert not target.exists()
    finally:
        release.set()
        holder.join(30)
    code, _, err = _run(capsys, "run", str(EXAMPLE), "--out", str(target), "--no-map")
    assert code == 0, err  # the lock dies with its holder


def _swap_many(target: str, label: str, rounds: int, results) -> None:
    failures = 0
    for k in range(rounds):
        try:
            with outdir.locked(Path(target)):

                def write(folder: Path, k: int = k) -> None:
                    for name in ("a.txt", "b.txt", "c.txt"):
                        (folder / name).write_text(f"{label}-{k}", encoding="utf-8")

                outdir.write_folder(Path(target), write)
        except DataError:
            failures += 1  # refused while another held the lock: fine, nothing touched
    results.put((label, failures))


def test_concurrent_writers_never_leave_a_missing_or_mixed_folder(tmp_path):
    target = tmp_path / "out"
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_swap_many, args=(str(target), f"w{i}", 40, results))
        for i in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    refused = dict(results.get(timeout=5) for _ in workers)
    assert sum(refused.values()) < 3 * 40  # some swaps did happen
    contents = {p.name: p.read_text(encoding="utf-8") for p in target.iterdir()}
    assert set(contents) == {outdir.MARKER, "a.txt", "b.txt", "c.txt"}
    assert len({contents[n] for n in ("a.txt", "b.txt", "c.txt")}) == 1  # one run's files
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
def test_killed_run_leaves_a_folder_the_next_run_replaces(tmp_path):
    target = tmp_path / "out"
    script = (
        "import os, time, pathlib, sys\n"
        "from carecheck import outdir\n"
        "t = pathlib.Path(sys.argv[1])\n"
        "with outdir.locked(t):\n"
        "    def w(f):\n"
        "        (f / 'half.txt').write_text('x', encoding='utf-8')\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(60)\n"
        "    outdir.write_folder(t, w)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    process.kill()
    process.wait(30)
    process.stdout.close()
    assert [p.name for p in tmp_path.glob(".out.tmp-*")]  # the dead run's half folder
    with outdir.locked(target):
        outdir.write_folder(target, lambda f: (f / "a.txt").write_text("1", encoding="utf-8"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]
    assert sorted(os.listdir(target)) == [outdir.MARKER, "a.txt"]
