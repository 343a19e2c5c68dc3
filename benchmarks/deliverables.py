"""Time and size every file a bureau is handed, against the whole run.

Runs a scenario once (the whole pipeline, files in, outputs out), then writes each
deliverable again, one at a time, into a copy of the finished folder and prints its seconds
and size beside the run's total:

    python benchmarks/deliverables.py scenarios/ningbo-2026.yaml
    python benchmarks/deliverables.py --size 100k        # benchmarks/scale.py's instance
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", type=Path)
    parser.add_argument("--size", choices=["5k", "20k", "100k"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    from carecheck.data import load_regions
    from carecheck.deliverables import write_reports
    from carecheck.gis import write_gpkg
    from carecheck.maps import write_map
    from carecheck.pipeline import run_scenario
    from carecheck.printmap import write_print_map
    from carecheck.workbook import write_xlsx

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if args.size:
            from benchmarks.scale import SIZES, generate

            (base / "input").mkdir()
            scenario = generate(SIZES[args.size], args.seed, base / "input")
        elif args.scenario:
            scenario = args.scenario
        else:
            parser.error("give a scenario or --size")
        out = base / "out"
        start = time.perf_counter()
        result = run_scenario(scenario, out=out)
        total = time.perf_counter() - start
        stages = {k: round(v, 2) for k, v in result.timings.items()}
        n_demand = result.model_size.get("demand_units")
        print(f"{scenario}: {n_demand:,} demand units; whole run {total:.2f} s; stages {stages}")
        regions = (
            load_regions(result.scenario.regions) if result.scenario.regions is not None else None
        )
        lang = result.scenario.language
        writers = [
            ("plan.gpkg", lambda f: write_gpkg(f, regions)),
            ("shapefiles/", lambda f: write_gpkg(f, regions, shapefile=True)),
            ("map.html", lambda f: write_map(f, regions=regions, lang=lang)),
            ("map.png + map.pdf", write_print_map),
            ("plan.xlsx", write_xlsx),
            ("report.md + report.docx", write_reports),
        ]
        print(f"{'file':<26}{'seconds':>9}{'share of run':>14}{'size':>12}")
        for label, write in writers:
            folder = base / f"copy-{len(label)}"
            shutil.copytree(out, folder)
            started = time.perf_counter()
            paths = write(folder)
            seconds = time.perf_counter() - started
            paths = paths if isinstance(paths, list) else [paths]
            if label == "shapefiles/":
                paths = [folder / "shapefiles"]
            size = sum(_size(Path(p)) for p in paths)
            print(f"{label:<26}{seconds:>9.2f}{seconds / total:>13.0%}{size / 1e6:>10.2f} MB")
            shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
