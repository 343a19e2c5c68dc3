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
    "tables": 1,  # CSV in UTF-8 or GBK, spreadsheets (calamine)
    "geocheck": 1,  # the geography that makes a plan right: distortion, sums
    "coverage": 1,
    "network": 1,
    "model": 1,
    "kernels": 1,  # compiled loops of the swap search (numba, optional)
    "solve": 2,  # solves model.Milp
    "heuristic": 3,  # starting plans for model.Milp (its merges are solved by solve)
    "verify": 1,
    "config": 3,
    "sources": 4,  # one layer read as a bureau holds it (tables, encodings, coords, filter)
    "data": 5,  # reads what config describes
    "result": 6,
    "maps": 6,
    "pmedian": 3,
    "partition": 2,
    "report": 7,
    "pipeline": 8,
    "frontier": 9,
    "sweep": 9,
    "cli": 10,
    "__init__": 11,
    "__main__": 12,
}
THIRD_PARTY_OWNERS = {
    "click": {"cli"},
    "rich": {"cli"},
    "folium": {"maps"},
    "matplotlib": {"frontier", "sweep"},
    "dask": {"sweep"},
    "offlinefolium": {"maps"},
    "numba": {"kernels"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(SRC.glob("*.py")), ids=lambda p: p.stem)
def test_imports_point_down(path):
    me = path.stem
    assert me in LAYERS, f"add {me} to LAYERS"
    for name in imports_of(path):
        top = name.split(".")[0]
        if top in THIRD_PARTY_OWNERS:
            assert me in THIRD_PARTY_OWNERS[top], f"{me} imports {top}"
        if top != "carecheck" or name == "carecheck":
            continue
        other = name.split(".")[1]
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
