"""Trade-off curves: coverage against the number of sites of one type, or against the budget.

The model is built once with the widest setting of the series; each point only changes the
bounds of the count (or budget) row and is solved again, so reach, reductions and the build
are paid once. Every point is checked by the independent verifier.

A count series is solved as ``carecheck run`` solves a count, where that is exact
(:func:`carecheck.model.at_most_counts`): every count row as "at most", the plan then padded to
the counts with the cheapest closed candidates (:func:`carecheck.model.pad_counts`); the padded
sites are marked in ``frontier_sites.csv`` and counted in ``frontier.csv`` (``padded``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carecheck import objectives
from carecheck.assemble import problem_from_layers, roads_of, solver_options
from carecheck.config import Scenario, load_scenario
from carecheck.data import Layers, load_layers, xy
from carecheck.errors import ScenarioError, VerificationError
from carecheck.model import (
    Bounds,
    Milp,
    Problem,
    ReducedProblem,
    at_most_counts,
    build_milp,
    pad_counts,
    reduce_problem,
    selection_from_solution,
)
from carecheck.plans import plans_from_layers
from carecheck.report import coverage_tables
from carecheck.solve import SolverOptions, Status, solve_milp
from carecheck.textsafe import write_csv
from carecheck.verify import verify_plan

Progress = Callable[[str], None]


def parse_series(text: str) -> list[float]:
    """``0..40`` (every integer), ``0..40..5`` (step 5) or ``10,20,30``."""
    try:
        if ".." in text:
            parts = [float(p) for p in text.split("..")]
            if len(parts) == 2:
                parts.append(1.0)
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise ValueError
            count = math.floor((stop - start) / step + 1e-9) + 1
            return [start + k * step for k in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
        if not values:
            raise ValueError
        return sorted(values)
    except ValueError:
        raise ScenarioError(
            [f"series {text!r}: write START..STOP, START..STOP..STEP or a list like 10,20,30"]
        ) from None


def _with_count(scenario: Scenario, type_name: str, count: int) -> Scenario:
    facility = scenario.facilities[type_name].model_copy(
        update={"count": count, "min_count": None, "max_count": None}
    )
    return scenario.model_copy(update={"facilities": {**scenario.facilities, type_name: facility}})


def frontier(
    scenario: Scenario | str | Path,
    *,
    type_name: str | None = None,
    counts: Sequence[float] | None = None,
    budgets: Sequence[float] | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Solve the series; one row per point with coverage, cost, status, gap and time.

    Give ``type_name`` with ``counts``, or ``budgets``.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if (counts is None) == (budgets is None):
        raise ScenarioError(["frontier: give either counts (with a type) or budgets"])
    if counts is not None and type_name not in scenario.facilities:
        raise ScenarioError(
            [f"--type: unknown facility type {type_name!r}; known: {sorted(scenario.facilities)}"]
        )
    if not objectives.get(scenario.objective.kind).traces_frontier:
        raise ScenarioError(["frontier: the scenario's objective must be max_coverage"])
    widest = scenario
    if counts is not None:
        assert type_name is not None
        widest = _with_count(scenario, type_name, int(max(counts)))
    elif scenario.constraints.budget is None:
        raise ScenarioError(["--budgets: the scenario needs constraints.budget (and costs)"])
    if progress:
        progress("reach")
    layers = load_layers(widest)
    problem, _ = problem_from_layers(widest, layers)
    reduced = reduce_problem(problem)
    base = build_milp(reduced)
    group = ("count", type_name) if counts is not None else ("budget",)
    if group not in base.groups:
        raise ScenarioError([f"frontier: the scenario has no {group[0]} row to vary"])
    row = int(np.flatnonzero(base.row_group == base.groups.index(group))[0])
    # counts as "at most" where that is exact (the widest problem asks every count it varies)
    relax = counts is not None and at_most_counts(problem) is not None
    count_rows = [
        int(r)
        for g, name in enumerate(base.groups)
        if name[0] == "count"
        for r in np.flatnonzero(base.row_group == g)
    ]
    options = solver_options(scenario)
    records = []
    series = counts if counts is not None else budgets
    assert series is not None
    for value in series:
        if progress:
            progress(f"solve {value:g}")
        lower, upper = base.row_lower.copy(), base.row_upper.copy()
        relaxed: tuple[Milp, Problem] | None = None
        if counts is not None:
            lower[row] = upper[row] = int(value)
            point = _with_count(scenario, type_name or "", int(value))
            if relax:
                at_most = lower.copy()
                at_most[count_rows] = np.minimum(at_most[count_rows], 0.0)
                relaxed = (
                    dataclasses.replace(base, row_lower=at_most, row_upper=upper),
                    _with_type_count(problem, type_name or "", int(value)),
                )
        else:
            upper[row] = float(value)
            point = scenario.model_copy(
                update={"constraints": scenario.constraints.model_copy(update={"budget": value})}
            )
        milp = dataclasses.replace(base, row_lower=lower, row_upper=upper)
        records.append(
            _solve_point(point, layers, problem, reduced, milp, options, value, relaxed=relaxed)
        )
    table = pd.DataFrame(records)
    covered = table["objective"].to_numpy(float)
    table["added_by_step"] = np.r_[np.nan, np.diff(covered)]
    return table


def _with_type_count(problem: Problem, type_name: str, count: int) -> Problem:
    """The array problem with one type's count exactly ``count`` (what the padding meets)."""
    types = tuple(
        dataclasses.replace(tp, count=Bounds(count, count)) if tp.name == type_name else tp
        for tp in problem.types
    )
    return dataclasses.replace(problem, types=types)


def _solve_point(
    point: Scenario,
    layers: Layers,
    problem: Problem,
    reduced: ReducedProblem,
    milp: Milp,
    options: SolverOptions,
    value: float,
    *,
    relaxed: tuple[Milp, Problem] | None = None,
) -> dict:
    """Solve one point and verify its plan. With ``relaxed`` (the model with the counts as
    "at most", and the problem whose counts the padding meets) that model is solved first and
    its plan padded; when it has no plan or cannot be padded, ``milp`` as asked."""
    start = time.perf_counter()
    opened = padded = None
    if relaxed is not None:
        at_most, asked = relaxed
        outcome = solve_milp(at_most, options)
        if outcome.status in (Status.OPTIMAL, Status.TIME_LIMIT) and outcome.values is not None:
            found = selection_from_solution(reduced, outcome.values)
            opened = pad_counts(asked, found)
            if opened is not None:
                padded = {
                    (tp.name, str(layers.facilities[tp.name].candidates["id"].iloc[int(k)]))
                    for tp, before, after in zip(asked.types, found, opened, strict=True)
                    for k in np.setdiff1d(after, before)
                }
    if opened is None:
        outcome = solve_milp(milp, options)
    record: dict = {"value": value, "status": outcome.status, "seconds": 0.0}
    if outcome.values is None:
        record.update(objective=np.nan, total_cost=np.nan, sites=np.nan, gap=np.nan)
        record["open_sites"] = []
        record["seconds"] = time.perf_counter() - start
        return record
    if opened is None:
        opened = selection_from_solution(reduced, outcome.values)
    selected, coverage, _, masks, total_cost = coverage_tables(point, layers, problem, opened)
    verification = verify_plan(
        xy(layers.demand),
        layers.demand["weight"].to_numpy(float),
        plans_from_layers(
            point,
            layers,
            {t: selected.loc[selected["type"] == t, "id"].tolist() for t in point.facilities},
        ),
        region=layers.demand["region"].to_numpy(object),
        budget=point.constraints.budget,
        roads=roads_of(point, layers),
        claimed={"coverage": coverage},
        claimed_masks=masks,
    )
    if not verification.ok:
        raise VerificationError(verification.problems)
    objective = float(
        sum(point.alpha(t) * c["covered_after"] for t, c in coverage["types"].items())
    )
    bound = outcome.bound if outcome.bound is not None else np.nan
    record.update(
        objective=objective,
        bound=max(bound, objective) if np.isfinite(bound) else np.nan,
        gap=outcome.gap if outcome.gap is not None else np.nan,
        total_cost=total_cost,
        sites=len(selected),
        padded=len(padded or ()),
        **{f"covered_{t}": c["covered_after"] for t, c in coverage["types"].items()},
        open_sites=[
            {
                "type": str(r["type"]),
                "id": str(r["id"]),
                "name": r.get("name"),
                "priority": r.get("priority"),
                "padded": (str(r["type"]), str(r["id"])) in (padded or ()),
            }
            for r in selected.to_dict(orient="records")
        ],
    )
    record["seconds"] = time.perf_counter() - start
    return record


def knee(values: np.ndarray, covered: np.ndarray) -> int | None:
    """Index of the knee: the point farthest above the chord from the first to the last."""
    ok = np.isfinite(covered)
    if ok.sum() < 3:
        return None
    x, y = values[ok], covered[ok]
    span_x, span_y = x[-1] - x[0], y[-1] - y[0]
    if span_x <= 0 or span_y <= 0:
        return None
    xn, yn = (x - x[0]) / span_x, (y - y[0]) / span_y
    distance = yn - xn
    best = int(np.argmax(distance))
    return int(np.flatnonzero(ok)[best]) if distance[best] > 0 else None


_TEXT = {
    "zh": {
        "objective": "目标值（各类设施覆盖老年人数加权和）",
        "covered": "{type}覆盖老年人数",
        "choice": "方案取值（{value}）",
        "knee": "拐点（{value}）",
        "count": "{type}新开数量（处）",
        "budget": "预算",
    },
    "en": {
        "objective": "objective (weighted sum of elderly covered over types)",
        "covered": "elderly covered by {type}",
        "choice": "scenario's choice ({value})",
        "knee": "knee ({value})",
        "count": "{type} sites opened",
        "budget": "budget",
    },
}


def axis_label(
    kind: str, lang: str = "zh", *, type_name: str | None = None, unit: str | None = None
) -> str:
    """The x-axis of a frontier: ``count`` of a type's sites, or ``budget`` (with its unit)."""
    text = _TEXT[lang if lang in _TEXT else "zh"]
    if kind == "count":
        return text["count"].format(type=_type_name(type_name or "", lang))
    if not unit:
        return text["budget"]
    return f"{text['budget']}（{unit}）" if lang == "zh" else f"{text['budget']} ({unit})"


def _type_name(type_name: str, lang: str) -> str:
    from carecheck.labels import LABELS

    return LABELS.get(lang, LABELS["zh"]).get("type", {}).get(type_name, type_name)


def write_frontier(
    table: pd.DataFrame,
    out_dir: Path,
    *,
    x_label: str,
    chosen: float | None,
    title: str,
    lang: str = "zh",
    type_name: str | None = None,
) -> tuple[Path, Path]:
    """``frontier.csv`` and ``frontier_sites.csv`` (UTF-8 with BOM) and ``frontier.png``.

    The plot shows coverage per facility type — of ``type_name`` only when given (the type
    whose count varies) — never the sum over types, with its y-axis from 0; the knee and the
    scenario's own choice are marked on the objective's curve. With ``lang: zh`` and no CJK
    font installed the plot is in English. Returns the paths of ``frontier.csv`` and
    ``frontier.png``; ``frontier_sites.csv`` (one row per site open at each point: value,
    type, id, name, build order, opened only to meet the count) is beside them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    from carecheck.printmap import cjk_font

    font = cjk_font() if lang == "zh" else None
    shown_lang = "zh" if font is not None else "en"
    text = _TEXT[shown_lang]
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out_dir / "frontier.csv", out_dir / "frontier.png"
    sites_path = out_dir / "frontier_sites.csv"
    values = table["value"].to_numpy(float)
    objective = table["objective"].to_numpy(float)
    at_knee = knee(values, objective)
    open_sites = table["open_sites"] if "open_sites" in table else pd.Series([[]] * len(table))
    flat = table.drop(columns=["open_sites"], errors="ignore")
    write_csv(flat.assign(knee=[i == at_knee for i in range(len(flat))]), csv_path)
    rows = [
        {"value": v, **site} for v, sites in zip(values, open_sites, strict=True) for site in sites
    ]
    columns = ["value", "type", "id", "name", "priority", "padded"]
    write_csv(pd.DataFrame(rows, columns=columns), sites_path)
    covered_columns = [c for c in flat.columns if c.startswith("covered_")]
    if type_name is not None and f"covered_{type_name}" in covered_columns:
        covered_columns = [f"covered_{type_name}"]
    rc: dict[Any, Any] = {"font.family": [font, "DejaVu Sans"]} if font else {}
    with plt.rc_context(rc):
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=150)
        colours = ["#2b6cb0", "#c53030", "#2f855a", "#6b46c1"]
        for k, column in enumerate(covered_columns):
            name = column.removeprefix("covered_")
            label = text["covered"].format(type=_type_name(name, shown_lang))
            ax.plot(
                values,
                flat[column].to_numpy(float),
                marker="o",
                markersize=3,
                color=colours[k % len(colours)],
                label=label,
            )
        curve = flat[covered_columns[0]].to_numpy(float) if covered_columns else objective
        if chosen is not None and chosen in set(values):
            k = int(np.flatnonzero(values == chosen)[0])
            ax.scatter(
                [chosen],
                [curve[k]],
                s=80,
                color="#dd6b20",
                zorder=3,
                label=text["choice"].format(value=f"{chosen:g}"),
            )
        if at_knee is not None:
            ax.scatter(
                [values[at_knee]],
                [curve[at_knee]],
                s=80,
                marker="D",
                color="#2f855a",
                zorder=3,
                label=text["knee"].format(value=f"{values[at_knee]:g}"),
            )
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        if np.allclose(values, np.round(values)):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(x_label)
        ax.set_ylabel(
            text["covered"].format(type="").strip() if shown_lang == "en" else "覆盖老年人数"
        )
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(png_path)
        plt.close(fig)
    return csv_path, png_path
