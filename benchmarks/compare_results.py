"""Run every scenario in scenarios/ and compare its result.json with an earlier run's.

    python benchmarks/compare_results.py BEFORE_DIR AFTER_DIR [--run]

With ``--run``, first runs each ``scenarios/*.yaml`` into ``AFTER_DIR/<name>`` (no map). Then
compares ``BEFORE_DIR/<name>/result.json`` with ``AFTER_DIR/<name>/result.json`` key by key,
leaving out what differs between any two runs (``timings``, the scenario's absolute path,
``inputs``, which record where the files were, the run's date and the baseline's path), and
prints one line per scenario: identical, or the keys that differ. Exit code 1 when any differs. With
``--added-ok``, keys that only AFTER has (new outputs) are not differences.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORED = {"timings", "scenario_file", "inputs", "created"}  # top level
IGNORED_ANYWHERE = {"baseline_file"}  # paths of other scenarios


def _differences(a: object, b: object, path: str = "", added_ok: bool = False) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if (not path and key in IGNORED) or key in IGNORED_ANYWHERE:
                continue
            where = f"{path}.{key}" if path else key
            if added_ok and key not in a:
                continue
            if key not in a or key not in b:
                out.append(f"{where} (only in {'after' if key in b else 'before'})")
            else:
                out += _differences(a[key], b[key], where, added_ok)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path} (length {len(a)} → {len(b)})"]
        return [
            d
            for k, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{path}[{k}]", added_ok)
        ]
    return [] if a == b else [f"{path}: {a!r} → {b!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--run", action="store_true", help="run every scenario into AFTER first")
    parser.add_argument(
        "--added-ok",
        action="store_true",
        help="keys only AFTER has (new outputs) are not differences; changed values still are",
    )
    args = parser.parse_args()
    scenarios = sorted((ROOT / "scenarios").glob("*.yaml"))
    failed = 0
    for scenario in scenarios:
        name = scenario.stem
        if args.run:
            command = [sys.executable, "-m", "carecheck", "run", str(scenario)]
            command += ["--out", str(args.after / name), "--no-map"]
            subprocess.run(command, check=False, capture_output=True)
        try:
            before = json.loads((args.before / name / "result.json").read_text(encoding="utf-8"))
            after = json.loads((args.after / name / "result.json").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            print(f"{name}: missing {exc.filename}")
            failed += 1
            continue
        diff = _differences(before, after, added_ok=args.added_ok)
        failed += bool(diff)
        print(
            f"{name}: "
            + ("identical" if not diff else f"{len(diff)} difference(s): " + "; ".join(diff[:8]))
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
