"""Module layering: imports point one way (cli → pipeline → io modules → core → errors)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "carecheck"

# A module may import only modules of a strictly lower layer (same-layer imports are not
# allowed either, except where listed).
LAYERS = {
    "errors": 0,
    "outdir": 1,  # output folders: what may be replaced, the lock, the swap
    "textsafe": 1,  # user text made safe for spreadsheets and Markdown
    "coords": 0,  # GCJ-02 / BD-09 ↔ WGS84
    "schema": 0,  # the one list of demand and site attributes, and each output's columns
    "units": 0,  # money with its unit (万元, and 亿元 beside it)
    "labels": 0,  # display text of the map (zh/en), names of known types and tiers
    "palette": 0,  # colours and marker shapes of both maps
    "tables": 1,  # CSV in UTF-8 or GBK, spreadsheets (calamine)
    "geocheck": 1,  # the geography that makes a plan right: distortion, sums
    "coverage": 1,
    "network": 1,
    "model": 1,
    "kernels": 1,  # compiled loops of the swap search (numba, optional)
    "solve": 2,  # solves model.Milp
    "heuristic": 3,  # starting plans for model.Milp (its merges are solved by solve)
    "verify": 1,
    "config": 3,  # reads the allowed objective kinds from the registry
    "objectives": 0,  # the registry: kind → module, imported on use
    "diagnosis": 4,  # what to relax when a scenario is infeasible
    "objectives.base": 7,  # the protocol every objective implements
    "objectives.max_coverage": 8,
    "objectives.min_sites": 8,
    "objectives.capacitated": 8,
    "objectives.min_distance": 8,
    "sources": 4,  # one layer read as a bureau holds it (tables, encodings, coords, filter)
    "data": 5,  # reads what config describes
    "result": 6,
    "maps": 6,
    "pmedian": 3,
    "partition": 2,
    "report": 9,
    "assemble": 8,  # scenario + layers → the array problem
    "plans": 9,  # a plan checked (the verifier's view) and summarised
    "gis": 7,  # plan.gpkg and shapefiles/ from a finished run's files
    "printmap": 7,  # map.png and map.pdf, the printable map (matplotlib)
    "handout": 8,  # the report's content (also the workbook's), as Word and Markdown
    "workbook": 9,  # plan.xlsx from handout's tables (xlsxwriter)
    "deliverables": 10,  # every handed-on file, in order, and their redraw
    "pipeline": 11,  # the run, stage by stage
    "finished": 12,  # commands on a finished run's folder: read, compare, verify, map
    "frontier": 13,
    "sweep": 13,
    "cli": 14,
    "__init__": 15,
    "__main__": 16,
}
THIRD_PARTY_OWNERS = {
    "click": {"cli"},
    "rich": {"cli"},
    "folium": {"maps"},
    "matplotlib": {"frontier", "sweep", "printmap"},
    "docx": {"handout"},
    "xlsxwriter": {"workbook"},
    "dask": {"sweep"},
    "offlinefolium": {"maps"},
    "numba": {"kernels"},
}


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:`` (annotations only: no dependency)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            found.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return found


def imports_of(path: Path, *, typing_too: bool = True) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set() if typing_too else _type_checking_only(tree)
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def module_name(path: Path) -> str:
    """``objectives/base.py`` → ``objectives.base``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_point_down(path):
    me = module_name(path)
    assert me in LAYERS, f"add {me} to LAYERS"
    # the registry names the protocol in annotations only; everything else counts type imports
    for name in imports_of(path, typing_too=me != "objectives"):
        top = name.split(".")[0]
        if top in THIRD_PARTY_OWNERS:
            assert me in THIRD_PARTY_OWNERS[top], f"{me} imports {top}"
        if top != "carecheck" or name == "carecheck":
            continue
        other = name.removeprefix("carecheck.")
        while other not in LAYERS and "." in other:  # a name imported from a module
            other = other.rsplit(".", 1)[0]
        assert LAYERS[other] < LAYERS[me], f"{me} imports {other}: an upward or sideways import"


def test_verify_is_independent_of_reach_code():
    names = imports_of(SRC / "verify.py")
    assert not any(n.startswith("carecheck.") for n in names)
    assert "scipy.spatial" not in names


def test_core_modules_do_no_io():
    for stem in ("coverage", "model", "network", "partition", "verify"):
        text = (SRC / f"{stem}.py").read_text(encoding="utf-8")
        for word in ("open(", "print(", "read_file", "to_file", "write_text"):
            assert word not in text, f"{stem}.py uses {word}"


HEAVY = {"pulp", "highspy", "folium", "offlinefolium", "matplotlib", "dask", "numba"}


def _loaded_by(*args: str) -> set[str]:
    """Top-level packages a fresh ``carecheck ARGS`` process has imported when it ends."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom carecheck.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=SRC.parents[1],
        timeout=120,
    )
    return set(proc.stdout.strip().splitlines()[-1].split())


@pytest.mark.parametrize(
    "args", [("--help",), ("--version",), ("validate", "scenarios/example.yaml")], ids=str
)
def test_light_commands_load_no_solver_map_plot_or_cluster(args):
    loaded = _loaded_by(*args)
    assert "carecheck" in loaded
    assert not loaded & HEAVY, sorted(loaded & HEAVY)
    if args[0].startswith("--"):  # nothing of the data stack either
        assert not loaded & {"numpy", "pandas", "geopandas", "scipy", "pydantic"}


def test_a_data_only_run_loads_what_it_needs_and_nothing_else(tmp_path):
    """A default CBC run: the data stack and PuLP (for CBC), but not the map, plot, Word or
    Excel writers, the cluster, nor numba (the default start makes no search rounds). HiGHS may
    load: the starting plan's swap search solves its merges with it."""
    out = tmp_path / "out 结果"
    loaded = _loaded_by("run", "scenarios/example.yaml", "--out", str(out), "--data-only")
    assert (out / "result.json").is_file() and not (out / "report.docx").exists()
    assert {"carecheck", "numpy", "pandas", "geopandas", "scipy", "pulp"} <= loaded
    unused = {"folium", "offlinefolium", "matplotlib", "docx", "xlsxwriter", "dask"}
    assert not loaded & (unused | {"numba"}), sorted(loaded & (unused | {"numba"}))


def test_a_run_without_map_html_loads_no_folium(tmp_path):
    """The printable map takes its colours from palette, not from maps (which loads folium)."""
    out = tmp_path / "out"
    loaded = _loaded_by("run", "scenarios/example.yaml", "--out", str(out), "--no-map")
    assert (out / "map.png").is_file() and not (out / "map.html").exists()
    assert {"matplotlib", "xlsxwriter", "docx"} <= loaded
    assert not loaded & {"folium", "branca", "jinja2", "offlinefolium"}


def test_readme_layout_names_every_module():
    readme = (SRC.parents[1] / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("### Layout") :]
    layout = layout[: layout.index("\n## ")] if "\n## " in layout else layout
    for path in MODULES:
        name = module_name(path)
        if name in ("__init__", "__main__"):
            continue
        shown = "objectives/__init__" if name == "objectives" else name.replace(".", "/")
        short = shown.rsplit("/", 1)[-1]
        assert f"`{shown}`" in layout or f"`{short}`" in layout, f"README layout: add {name}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_private_name_crosses_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("carecheck"):
            private = [a.name for a in node.names if a.name.startswith("_") and a.name[1] != "_"]
            assert not private, f"{module_name(path)} imports {private} from {node.module}"
