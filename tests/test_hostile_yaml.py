"""Hostile or silently wrong YAML (issue 18): duplicate keys, alias bombs, huge files and
devices, deep nesting, non-finite numbers. Each is refused with a message naming the file,
where and why; the CLI exits 2 without a traceback; the loader stays within bounds."""

from __future__ import annotations

import os
import sys
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecheck import ScenarioError, load_scenario
from carecheck.cli import main
from carecheck.config import MAX_YAML_BYTES, MAX_YAML_NODES, read_yaml
from carecheck.sweep import load_sweep

from .conftest import EXAMPLE

SCENARIO = """\
name: t
demand: {path: d.geojson, id: id, weight: w}
facilities:
  home:
    radius_m: 1000
    count: 4
    candidates: {path: c.geojson, id: id}
"""

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return "\n".join(info.value.problems)


def validate(capsys: pytest.CaptureFixture[str], path: Path | str) -> tuple[int, str]:
    """``carecheck validate PATH`` in this process: exit code and everything printed."""
    with pytest.raises(SystemExit) as info:
        main(["validate", str(path)])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return int(info.value.code or 0), output


# --- duplicate keys --------------------------------------------------------------------------


def test_duplicate_key_names_key_path_and_both_lines(tmp_path, capsys):
    path = write(tmp_path, SCENARIO + "    count: 5\n")
    joined = problems(path)
    assert (
        f"{path} → facilities.home.count: key 'count' is given twice, on line 6 and on line 8; "
        "YAML would silently keep only the last, so keep one"
    ) in joined
    code, output = validate(capsys, path)
    assert code == 2 and "facilities.home.count: key 'count'" in output and "line 8" in output


def test_duplicate_blocks_and_pydantic_problems_reported_together(tmp_path):
    text = (
        SCENARIO + "facilities:\n  clinic: {radius_m: -1, count: 1, candidates: {path: c, id: i}}\n"
    )
    joined = problems(write(tmp_path, text))
    assert "→ facilities: key 'facilities' is given twice, on line 3 and on line 8" in joined
    assert "→ facilities.clinic.radius_m: Input should be greater than 0 (got: -1)" in joined


def test_duplicate_keys_in_flow_mappings_and_quoted_keys(tmp_path):
    text = SCENARIO.replace("{path: d.geojson,", "{path: d.geojson, 'path': e.geojson,")
    joined = problems(write(tmp_path, text))
    assert "→ demand.path: key 'path' is given twice, on line 2 and on line 2" in joined


def test_merge_keys_still_work_and_override_is_no_duplicate(tmp_path):
    text = (
        "defaults: &home {radius_m: 1000, count: 2, candidates: {path: c.geojson, id: id}}\n"
        "name: t\n"
        "demand: {path: d.geojson, id: id, weight: w}\n"
        "facilities:\n"
        "  home:\n"
        "    <<: *home\n"
        "    count: 4\n"
    )
    path = write(tmp_path, text)
    data, found = read_yaml(path)
    assert found == []
    assert data["facilities"]["home"] == {
        "radius_m": 1000,
        "count": 4,
        "candidates": {"path": "c.geojson", "id": "id"},
    }
    joined = problems(path)
    assert "given twice" not in joined and "Field required" not in joined
    assert joined.endswith("→ defaults: unknown key (misspelled?)")


def test_duplicate_keys_in_a_sweep_file(tmp_path):
    path = write(tmp_path, "name: s\nscenarios: [a.yaml]\nname: t\n", "sweep.yaml")
    with pytest.raises(ScenarioError) as info:
        load_sweep(path)
    assert f"{path} → name: key 'name' is given twice, on line 1 and on line 3" in str(info.value)


# --- aliases, nesting, size ------------------------------------------------------------------


def test_billion_laughs_is_refused_quickly(tmp_path, capsys):
    path = write(tmp_path, BOMB)
    joined = problems(path)
    assert joined.startswith(f"{path} → line ")
    assert f"expands to more than {MAX_YAML_NODES:,} values" in joined
    assert "aliases are limited to 100 uses" in joined
    code, output = validate(capsys, path)
    assert code == 2 and "aliases are limited" in output


def test_too_many_aliases(tmp_path):
    text = SCENARIO + "x: &x 1\ny: [" + ", ".join(["*x"] * 101) + "]\n"
    joined = problems(write(tmp_path, text))
    assert "more than 100 aliases (*x and others): aliases are limited" in joined


def test_alias_into_itself(tmp_path):
    joined = problems(write(tmp_path, "name: &n [1, *n]\n"))
    assert "alias *n refers to a node that contains it" in joined


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path, capsys):
    for text in ("[" * 10_000, "{a: " * 10_000, "".join(f"{' ' * i}- \n" for i in range(2000))):
        path = write(tmp_path, text)
        assert "nested more than 50 levels deep" in problems(path)
    code, output = validate(capsys, write(tmp_path, "[" * 10_000))
    assert code == 2 and "nested more than 50 levels deep" in output


def test_too_many_values(tmp_path):
    path = write(tmp_path, "name: [" + "1, " * (MAX_YAML_NODES + 10) + "]\n")
    assert f"more than {MAX_YAML_NODES:,} values" in problems(path)


def test_file_larger_than_the_limit(tmp_path, capsys):
    path = write(tmp_path, SCENARIO + "#" * MAX_YAML_BYTES + "\n")
    assert f"{path}: larger than 4 MiB, more than a scenario file may be" in problems(path)
    code, output = validate(capsys, path)
    assert code == 2 and "larger than 4 MiB" in output


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_devices_are_refused_without_reading(capsys):
    assert "/dev/zero: a character device, not a file" in problems(Path("/dev/zero"))
    code, output = validate(capsys, "/dev/zero")
    assert code == 2 and "a character device, not a file" in output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert f"{fifo}: a named pipe, not a file" in problems(fifo)
    code, _ = validate(capsys, fifo)
    assert code == 2


def test_folder_is_refused(tmp_path):
    if sys.platform == "win32":
        assert "cannot read the file" in problems(tmp_path)
    else:
        assert f"{tmp_path}: a folder, not a file" in problems(tmp_path)


def test_utf8_bom_is_accepted_and_other_encodings_refused(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    data, found = read_yaml(path)
    assert data["name"] == "example" and found == []
    path.write_bytes("name: 宁波\n".encode("gbk"))
    assert "not UTF-8 text" in problems(path) and "save it as UTF-8" in problems(path)


def test_bad_scalar_values_are_yaml_problems(tmp_path):
    joined = problems(write(tmp_path, "name: 2026-13-01\n"))
    assert "invalid YAML value" in joined and "month must be in 1..12" in joined


# --- non-finite numbers ----------------------------------------------------------------------


def test_non_finite_numbers_named_by_key_path_and_value(tmp_path, capsys):
    text = (
        SCENARIO.replace("radius_m: 1000", "radius_m: .inf")
        + "constraints: {budget: .NaN}\nsolver: {time_limit_s: 1e999, mip_gap: -.inf}\n"
        + "objective: {weights: {home: 1.0e+999}}\n"
    )
    path = write(tmp_path, text)
    joined = problems(path)
    assert f"{path} → facilities.home.radius_m: line 5: not a finite number" in joined
    assert "(got: '.inf')" in joined
    assert "→ constraints.budget: line 8: not a finite number" in joined
    assert "(got: '.NaN')" in joined
    assert "→ solver.mip_gap: line 9: not a finite number" in joined
    assert "→ objective.weights.home: line 10: not a finite number" in joined
    assert "(got: '1.0e+999')" in joined
    # a string 1e999 (YAML 1.1 reads no float there) becomes inf in pydantic: refused there
    assert "→ solver.time_limit_s: Input should be a finite number (got: '1e999')" in joined
    # each non-finite number once: not again as pydantic's finite_number error
    assert joined.count("facilities.home.radius_m") == 1
    code, output = validate(capsys, path)
    assert code == 2 and "not a finite number" in output


def test_non_finite_anywhere_even_where_no_float_is_expected(tmp_path):
    joined = problems(write(tmp_path, SCENARIO + "title: [1, .inf]\n"))
    assert "→ title.1: line 8: not a finite number" in joined


@pytest.mark.parametrize("option", ["--time-limit", "--gap"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "NaN"])
def test_cli_refuses_non_finite_time_limit_and_gap(capsys, option, value):
    with pytest.raises(SystemExit) as info:
        main(["run", str(EXAMPLE), option, value, "--no-map"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert f"Invalid value for '{option}'" in err and "Traceback" not in err


# --- names and titles ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "old", "new", "expected"),
    [
        ("name", "name: t", 'name: "t\\n"', "→ name: the scenario name names the output folder"),
        ("type", "  home:", '  "home\\n":', "facility type names may use letters"),
        ("type", "  home:", '  "home\\r":', "facility type names may use letters"),
        ("title", "name: t", 'name: t\ntitle: "two\\nlines"', "→ title: the title is one line"),
        ("title", "name: t", 'name: t\ntitle: "tab\\tbed"', "→ title: the title is one line"),
        ("title", "name: t", 'name: t\ntitle: "c1\\x85"', "→ title: the title is one line"),
    ],
)
def test_names_and_titles_refuse_control_characters(tmp_path, capsys, where, old, new, expected):
    path = write(tmp_path, SCENARIO.replace(old, new))
    assert expected in problems(path), where
    code, output = validate(capsys, path)
    assert code == 2 and expected in output


# --- property: hostile YAML stays within bounds ----------------------------------------------

PEAK_LIMIT = 200 * 2**20


@st.composite
def alias_webs(draw: st.DrawFn) -> str:
    """Anchored mappings whose items and merges alias earlier anchors (alias bombs of any
    width and depth); in a few documents also itself, later or undefined anchors."""
    wild = draw(st.integers(0, 7)) == 0
    lines = []
    for i in range(draw(st.integers(1, 14))):
        items = []
        for _ in range(draw(st.integers(0, 14))):
            kind = draw(st.sampled_from(["alias", "alias", "alias", "scalar", "nest"]))
            if kind == "scalar" or (i == 0 and not wild):
                items.append(draw(st.sampled_from(["1", "lol", ".inf", "{k: v}", "[]"])))
            else:
                target = draw(st.integers(0, 14 if wild else i - 1))
                item = f"*a{target}"
                items.append(f"[{item}, {{x: {item}}}]" if kind == "nest" else item)
        merge = f"<<: *a{draw(st.integers(0, i - 1))}, " if i and draw(st.booleans()) else ""
        lines.append(f"k{i}: &a{i} {{{merge}v{i}: [{', '.join(items)}]}}")
    return "\n".join(lines) + "\n"


@st.composite
def deep_nestings(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 12_000))
    style = draw(st.sampled_from(["[", "{a: ", "block"]))
    closed = draw(st.booleans())
    if style == "block":
        depth = min(depth, 1500)
        return "".join(f"{' ' * i}- \n" for i in range(depth))
    close = ("]" if style == "[" else "}") * depth if closed else ""
    return style * depth + "1" + close + "\n"


@st.composite
def big_documents(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["keys", "dupkeys", "list", "string"]))
    n = draw(st.integers(0, 20_000))
    if kind == "keys":
        return "".join(f"k{i}: {i}\n" for i in range(n))
    if kind == "dupkeys":
        return "".join(f"k: {i}\n" for i in range(n))
    if kind == "list":
        return "name: [" + ", ".join(["x"] * n) + "]\n"
    return "name: " + "x" * (n * 25) + "\n"


@settings(
    max_examples=60,
    deadline=timedelta(seconds=10),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(alias_webs(), deep_nestings(), big_documents()),
    where=st.sampled_from(["top", "demand", "facilities", "title"]),
)
def test_hostile_yaml_returns_or_raises_scenario_error_in_bounds(tmp_path, body, where):
    if where == "top":
        text = body
    else:  # under a scenario key, so that validation walks it too
        indented = "".join(f"  {line}\n" for line in body.splitlines())
        text = SCENARIO.replace(f"{where}:", f"{where}-old:") + f"{where}:\n{indented}"
    path = write(tmp_path, text)
    tracemalloc.start()
    try:
        load_scenario(path)
    except ScenarioError as exc:
        assert exc.problems and all(p.startswith(str(path)) for p in exc.problems)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.0f} MiB"
