"""The README's quick start stays true: two commands, an existing scenario, CI's test command."""

from __future__ import annotations

import re

from .conftest import ROOT


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the quick start has exactly one fenced block"
    return [line for line in blocks[0].splitlines() if line.strip()]


def test_two_commands_run_a_real_scenario_and_the_tests():
    run, test = quick_start_commands()
    scenario = re.search(r"carecheck run (\S+)", run).group(1)
    assert (ROOT / scenario).exists()
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    _, test = quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_test = [line for line in ci.splitlines() if "pytest" in line and not line.startswith("#")]
    assert len(ci_test) == 1
    assert test.endswith(ci_test[0].strip())
