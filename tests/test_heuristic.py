"""The swap search that gives plain covering models a starting plan, and MIP starts."""

from __future__ import annotations

import multiprocessing
import queue
import subprocess
import sys
import threading
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from carecheck import heuristic, kernels
from carecheck.heuristic import (
    SearchResult,
    _Plan,
    _search,
    greedy,
    merge_plans,
    mip_start,
    plain_counts,
    swap_search,
    window_search,
)
from carecheck.model import build_milp, problem_from_reach, reduce_problem
from carecheck.solve import SolverOptions, solve_milp


def instance(seed: int, n_rows: int = 30, n_cand: int = 12, density: float = 0.2):
    rng = np.random.default_rng(seed)
    reach = sp.csr_matrix(rng.random((n_rows, n_cand)) < density)
    weight = rng.integers(1, 50, n_rows).astype(float)
    return reach, weight


def covered(reach, weight, opened) -> float:
    """Brute force: weight of rows with an opened column."""
    return float(weight[reach.toarray()[:, list(opened)].any(axis=1)].sum())


def best_by_enumeration(reach, weight, p) -> float:
    return max(covered(reach, weight, s) for s in combinations(range(reach.shape[1]), p))


# the bookkeeping three ways: numpy, the loops of carecheck.kernels as plain Python, and the
# same loops compiled by numba (a test dependency, so this never skips)
BACKENDS = ["numpy", "python", "numba"]


def loops(backend: str):
    if backend == "numpy":
        return None
    if backend == "python":
        return kernels.PLAIN
    found = kernels.compiled()
    assert found is not None, "numba is a test dependency: pip install -e .[test]"
    return found


def brute_bookkeeping(reach, weight, opened):
    """hits, gain, alone and both (keyed by site) from the dense matrix, by plain loops."""
    dense = reach.toarray().astype(bool)
    hits = dense[:, list(opened)].sum(axis=1)
    gain = np.array([weight[dense[:, j] & (hits == 0)].sum() for j in range(dense.shape[1])])
    alone = np.array([weight[dense[:, j] & (hits == 1)].sum() for j in range(dense.shape[1])])
    both = {}
    for k in opened:
        only_k = dense[:, k] & (hits == 1)
        both[k] = np.array([weight[only_k & dense[:, j]].sum() for j in range(dense.shape[1])])
    return hits, gain, alone, both


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 5))
@pytest.mark.parametrize("backend", BACKENDS)
def test_bookkeeping_after_any_moves_equals_a_recount(backend, seed, p):
    reach, weight = instance(seed)
    rng = np.random.default_rng(seed)
    plan = _Plan(reach, weight, p, pairs=True, kernels=loops(backend))
    plan.fill(p)
    for _ in range(12):
        size = int(rng.integers(1, p + 1))
        leave = rng.choice(plan.site, size=size, replace=False)
        enter = rng.choice(np.flatnonzero(plan.slot < 0), size=size, replace=False)
        plan.apply(leave, enter)
        hits, gain, alone, both = brute_bookkeeping(reach, weight, plan.opened())
        assert plan.hits.tolist() == hits.tolist()
        assert plan.gain == pytest.approx(gain) and plan.alone == pytest.approx(alone)
        for k in plan.opened():
            assert plan.both[plan.slot[k]] == pytest.approx(both[k])
        assert plan.covered == pytest.approx(covered(reach, weight, plan.opened()))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 5))
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_batch_of_swaps_changes_coverage_by_what_it_says(backend, seed, p):
    reach, weight = instance(seed)
    plan = _Plan(reach, weight, p, pairs=True, kernels=loops(backend))
    plan.fill(p)
    assert plan.opened().tolist() == greedy(reach, weight, p).tolist()
    while True:
        leave, enter, scores = plan.independent_swaps(1e-9)
        if len(leave) == 0:
            break
        change = scores.tolist()
        assert all(c > 0 for c in change) and change == sorted(change, reverse=True)
        # the first is the best single swap of all (brute force)
        opened = set(plan.opened().tolist())
        now = covered(reach, weight, opened)
        best_single = max(
            covered(reach, weight, (opened - {k}) | {j}) - now
            for k in opened
            for j in set(range(reach.shape[1])) - opened
        )
        assert change[0] == pytest.approx(best_single)
        plan.apply(leave, enter)
        assert plan.covered - now == pytest.approx(sum(change))
        assert plan.covered == pytest.approx(covered(reach, weight, plan.opened()))
    # at the local optimum no single swap improves (checked by brute force)
    opened = set(plan.opened().tolist())
    now = covered(reach, weight, opened)
    for k in opened:
        for j in set(range(reach.shape[1])) - opened:
            assert covered(reach, weight, (opened - {k}) | {j}) <= now + 1e-9


@pytest.mark.parametrize("seed", [4, 5, 6])
@pytest.mark.parametrize("backend", BACKENDS)
def test_path_relinking_takes_the_best_swap_each_step_and_returns_the_best_plan_between(
    backend, seed
):
    reach, _ = instance(seed, n_rows=80, n_cand=30, density=0.1)
    weight = np.random.default_rng(seed).random(80)  # no ties between swaps
    start, target = np.arange(6), np.arange(10, 16)
    plan = _Plan(reach, weight, 6, pairs=True, kernels=loops(backend))
    plan.move_to(start)
    middle = plan.relink(target)
    # the same walk by brute force: each step the swap inside the difference covering most
    here, between = set(start.tolist()), []
    while len(here - set(target.tolist())) > 1:
        steps = [
            ((here - {k}) | {j}, covered(reach, weight, (here - {k}) | {j}))
            for k in here - set(target.tolist())
            for j in set(target.tolist()) - here
        ]
        here, value = max(steps, key=lambda step: step[1])
        between.append((value, sorted(here)))
    assert plan.opened().tolist() == between[-1][1]  # one swap short of the target
    assert middle.tolist() == max(between)[1]
    plan.move_to(np.array([0, 1, 2, 3, 4, 10]))
    assert plan.relink(np.array([0, 1, 2, 3, 4, 11])) is None  # one site apart: nothing between


def test_search_stops_when_every_row_is_covered_and_falls_back_to_greedy_without_room(
    monkeypatch,
):
    reach, weight = instance(8, n_rows=40, n_cand=20, density=0.3)
    found = swap_search(reach, weight, 15, seconds=30.0)
    assert found.covered == pytest.approx(weight[reach.toarray().any(axis=1)].sum())
    assert found.rounds == 0  # stopped at once: nothing left to cover
    monkeypatch.setattr("carecheck.heuristic._PAIR_LIMIT", 0)
    plain = swap_search(reach, weight, 3, seconds=30.0)
    assert plain.opened.tolist() == greedy(reach, weight, 3).tolist() and plain.rounds == 0


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 4))
def test_search_reports_the_true_coverage_of_its_plan_and_finds_small_optima(seed, p):
    reach, weight = instance(seed)
    found = swap_search(reach, weight, p, seconds=5.0, rounds=200, seed=1)
    assert len(found.opened) == p == len(set(found.opened.tolist()))
    assert found.covered == pytest.approx(covered(reach, weight, found.opened))
    # 12 candidates, p ≤ 4: 200 perturbation rounds find the optimum on these instances
    assert found.covered == pytest.approx(best_by_enumeration(reach, weight, p))


def test_search_is_repeatable_for_a_fixed_number_of_rounds():
    reach, weight = instance(7, n_rows=200, n_cand=60, density=0.05)
    a = swap_search(reach, weight, 6, seconds=60.0, rounds=50, seed=3)
    b = swap_search(reach, weight, 6, seconds=60.0, rounds=50, seed=3)
    assert a.opened.tolist() == b.opened.tolist() and a.covered == b.covered


@pytest.mark.parametrize(("case", "winner"), [(9, 7), (19, 5)])
def test_searches_side_by_side_return_the_best_seed_ties_to_the_lowest(case, winner):
    # found by trying seeds 5, 6, 7 for two rounds: on case 9 seed 7 covers most; on case 19
    # seeds 5 and 7 tie, and the lower seed's plan is returned
    reach, weight = instance(case, n_rows=600, n_cand=200, density=0.02)
    alone = {k: swap_search(reach, weight, 15, seconds=60.0, rounds=2, seed=k) for k in (5, 6, 7)}
    together = swap_search(reach, weight, 15, seconds=60.0, rounds=2, seed=5, workers=3)
    assert together.seed == winner and together.workers == 3
    assert together.opened.tolist() == alone[winner].opened.tolist()
    best = max(result.covered for result in alone.values())
    assert together.covered == best == covered(reach, weight, together.opened)
    assert together.rounds == sum(result.rounds for result in alone.values())


def search_in(results, reach, weight, options):
    results.put(swap_search(reach, weight, 15, workers=2, **options))


def in_a_daemonic_worker(reach, weight, **options):
    """swap_search(…, workers=2, **options) run inside a daemonic process, as in a pool."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    args = (results, reach, weight, options)
    worker = context.Process(target=search_in, args=args, daemon=True)
    worker.start()
    found = results.get(timeout=120)
    worker.join(timeout=30)
    return found


def test_inside_a_daemonic_worker_one_search_runs():
    # pool and Dask workers are daemonic and may not start processes: no crash, one search
    reach, weight = instance(9, n_rows=600, n_cand=200, density=0.02)
    found = in_a_daemonic_worker(reach, weight, seconds=60.0, rounds=2)
    alone = swap_search(reach, weight, 15, seconds=60.0, rounds=2)
    assert found.workers == 1 and found.opened.tolist() == alone.opened.tolist()


def test_a_search_stops_when_told_and_tells_the_others_when_it_reaches_the_goal():
    reach, weight = instance(6, n_rows=600, n_cand=200, density=0.02)
    options = dict(rounds=None, seed=0, initial=None, backend="auto")
    told = threading.Event()
    told.set()  # another search got there: this one ends after its round
    found = _search(reach, weight, 15, seconds=600.0, stop_at=None, stop=told, **options)
    assert found.rounds == 1
    goal = swap_search(reach, weight, 15, seconds=60.0, rounds=0).covered  # first local optimum
    tell = threading.Event()
    found = _search(reach, weight, 15, seconds=600.0, stop_at=goal, stop=tell, **options)
    assert found.covered >= goal and found.rounds == 0 and tell.is_set()


# Merging, by hand. Rows r0…r5 with weights 10, 10, 1, 1, 8, 100; columns
#   a = 0 reaches r0, r2      b = 1 reaches r1, r3      c = 2 reaches r0, r1
#   d = 3 reaches r4          e = 4 reaches r5
# Open 2. Plan {a, d} covers 10 + 1 + 8 = 19, plan {c, b} covers 10 + 10 + 1 = 21. In their
# union {a, b, c, d} the best pair is {c, d}: 20 + 8 = 28 ({a, b} 22, {c, a} or {c, b} 21,
# {a, d} or {b, d} 19), taking c from one plan and d from the other. {c, e} = 120 is better
# but e is in neither plan, so the merge may not use it.
MERGE_REACH = sp.csr_matrix(
    np.array(
        [[1, 0, 1, 0, 0], [0, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 1, 0],
         [0, 0, 0, 0, 1]],
        dtype=bool,
    )
)  # fmt: skip
MERGE_WEIGHT = np.array([10.0, 10.0, 1.0, 1.0, 8.0, 100.0])


def test_merging_plans_picks_the_best_columns_among_theirs_and_no_others():
    plans = [np.array([0, 3]), np.array([2, 1])]
    merged = merge_plans(MERGE_REACH, MERGE_WEIGHT, 2, plans, seconds=10.0)
    assert merged.tolist() == [2, 3] and covered(MERGE_REACH, MERGE_WEIGHT, merged) == 28
    started = merge_plans(MERGE_REACH, MERGE_WEIGHT, 2, plans, seconds=10.0, start=np.array([0, 3]))
    assert started.tolist() == [2, 3]
    # the start's columns join the union: with {c, e} as the start, 120 is kept
    kept = merge_plans(MERGE_REACH, MERGE_WEIGHT, 2, plans, seconds=10.0, start=np.array([2, 4]))
    assert kept.tolist() == [2, 4]
    # nothing to choose: the union has no more columns than are opened
    assert merge_plans(MERGE_REACH, MERGE_WEIGHT, 2, [np.array([0, 3]), np.array([3, 0])],
                       seconds=10.0) is None  # fmt: skip


# Windows, by hand. Six rows of weight 1; open 2 of
#   P = 0 reaches r1, r2    Q = 1 reaches r3, r4    R = 2 reaches r1, r3, r5
#   S = 3 reaches r2, r4, r6
# {P, Q} covers 4. Each single swap keeps 4 ({R, Q} = r1 r3 r4 r5, {S, Q} = r2 r3 r4 r6,
# {P, R} = r1 r2 r3 r5, {P, S} = r1 r2 r4 r6), so {P, Q} is a local optimum for swaps; the
# optimum {R, S} covers all 6 and needs both sites moved at once.
WINDOW_REACH = sp.csr_matrix(
    np.array(
        [[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]],
        dtype=bool,
    )
)
WINDOW_WEIGHT = np.ones(6)


def test_a_window_moves_several_sites_at_once_where_single_swaps_are_stuck():
    stuck = swap_search(WINDOW_REACH, WINDOW_WEIGHT, 2, rounds=0, initial=np.array([0, 1]))
    assert stuck.opened.tolist() == [0, 1] and stuck.covered == 4
    found = window_search(WINDOW_REACH, WINDOW_WEIGHT, 2, np.array([0, 1]), seconds=60.0, steps=1,
                          size=2)  # fmt: skip
    assert found.opened.tolist() == [2, 3] and found.covered == 6 == best_by_enumeration(
        WINDOW_REACH, WINDOW_WEIGHT, 2
    )
    assert found.rounds == 1
    # a window of one site is a single swap, which cannot do better than 4; windows grow after
    # fast steps, so the second step frees two sites and gets there
    one = window_search(WINDOW_REACH, WINDOW_WEIGHT, 2, np.array([0, 1]), seconds=60.0, steps=1,
                        size=1)  # fmt: skip
    assert one.covered == 4
    two = window_search(WINDOW_REACH, WINDOW_WEIGHT, 2, np.array([0, 1]), seconds=60.0, steps=2,
                        size=1)  # fmt: skip
    assert two.covered == 6 and two.found_s > 0


def test_a_window_is_the_open_sites_nearest_in_the_reach_graph():
    # a path of rows: column j reaches rows j and j + 1, so columns j and j + 1 share a row
    n = 12
    reach = sp.csr_matrix(
        (np.ones(2 * n, dtype=bool), (np.r_[np.arange(n), np.arange(n) + 1], np.r_[np.arange(n),
         np.arange(n)])), shape=(n + 1, n),
    )  # fmt: skip
    is_open = np.zeros(n, dtype=bool)
    is_open[[0, 3, 5, 6, 9, 11]] = True
    rng = np.random.default_rng(0)
    csr, csc = reach.tocsr().astype(float), reach.tocsc().astype(float)
    assert heuristic._window(csr, csc, is_open, [5], 1, rng).tolist() == [5]
    assert heuristic._window(csr, csc, is_open, [5], 2, rng).tolist() == [5, 6]  # 1 ring away
    assert sorted(heuristic._window(csr, csc, is_open, [5], 3, rng).tolist()) == [3, 5, 6]
    assert sorted(heuristic._window(csr, csc, is_open, [5], 5, rng).tolist()) == [0, 3, 5, 6, 9]
    # around an uncovered row: row 8 is reached by the closed columns 7 and 8
    assert sorted(heuristic._window(csr, csc, is_open, [7, 8], 2, rng).tolist()) == [6, 9]
    # a window asked for more sites than are open holds them all
    assert len(heuristic._window(csr, csc, is_open, [5], 99, rng)) == 6


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 6))
def test_window_search_never_loses_coverage_and_recounts(seed, p, size):
    reach, weight = instance(seed, n_rows=40, n_cand=14, density=0.15)
    start = greedy(reach, weight, p)
    before = covered(reach, weight, start)
    found = window_search(reach, weight, p, start, seconds=60.0, steps=8, seed=seed, size=size)
    assert len(found.opened) == p == len(set(found.opened.tolist()))
    assert found.covered == pytest.approx(covered(reach, weight, found.opened))
    assert before <= found.covered <= best_by_enumeration(reach, weight, p)
    again = window_search(reach, weight, p, start, seconds=60.0, steps=8, seed=seed, size=size)
    assert again.opened.tolist() == found.opened.tolist()  # seeded: the same steps
    if size >= p:  # one window frees every site of a dense instance: the whole problem
        dense, _ = instance(seed, n_rows=40, n_cand=14, density=0.6)
        whole = window_search(dense, weight, p, greedy(dense, weight, p), seconds=60.0, steps=1,
                              size=p)  # fmt: skip
        assert whole.covered == best_by_enumeration(dense, weight, p)


def test_a_timed_search_merges_its_segments_plans(monkeypatch):
    # each segment (a search from greedy) is replaced by a plan fixed by its seed: even seeds
    # {a, d} = 19, odd seeds {c, b} = 21; on the first four columns the optimum is 28 = {c, d},
    # which only a merge of the two finds (the polish after the merge is the real search)
    reach, weight = MERGE_REACH[:5, :4], MERGE_WEIGHT[:5]
    plans = {0: np.array([0, 3]), 1: np.array([1, 2])}
    real = heuristic._search

    def segment(reach_, weight_, count, *, seed, initial, **options):
        if initial is not None:
            return real(reach_, weight_, count, seed=seed, initial=initial, **options)
        opened = plans[seed % 2]
        return SearchResult(opened, covered(reach, weight, opened), 1, 0.0, seed=seed)

    monkeypatch.setattr(heuristic, "_search", segment)
    found = swap_search(reach, weight, 2, seconds=20.0, segment_s=5.0)
    # 20 s less 6 s (30 %) for the window search and 2 s for the last merge: round(12 / 5) = 2
    # segments, seeds 0 and 1; the window search cannot better the optimum
    assert found.segments == 2 and found.merges == 1 and found.seed == -1
    assert found.opened.tolist() == [2, 3] and found.covered == 28 == best_by_enumeration(
        reach, weight, 2
    )
    assert found.rounds == 2  # one per segment; the polish perturbs nothing
    assert found.window_steps > 0


class ThreadAsProcess(threading.Thread):
    """A worker thread with the little of ``multiprocessing.Process`` the search uses, so that
    a monkeypatched ``_search`` reaches the workers too."""

    def terminate(self) -> None:
        pass


def workers_as_threads(workers, target, args):
    stop, results = threading.Event(), queue.Queue()
    threads = [ThreadAsProcess(target=target, args=(results, stop, i, *args), daemon=True)
               for i in range(1, workers)]  # fmt: skip
    for thread in threads:
        thread.start()
    return stop, results, threads


def test_on_several_cores_one_long_search_joins_the_segments_merges(monkeypatch):
    # the hybrid: worker 1 runs one long search (seed 0, from ``initial`` if given) that
    # reports {a, d} = 19 along the way and at its end; the segments here (seeds 1, 2, …) all
    # end at {c, b} = 21. Only a merge of the long search's plan with theirs finds {c, d} = 28.
    reach, weight = MERGE_REACH[:5, :4], MERGE_WEIGHT[:5]
    calls = []
    real = heuristic._search

    def search(reach_, weight_, count, *, seed, initial, seconds, rounds, report=None,
               report_at=None, **options):  # fmt: skip
        if rounds == 0:  # the polish after a merge: the real thing
            return real(reach_, weight_, count, seed=seed, initial=initial, seconds=seconds,
                        rounds=rounds, **options)  # fmt: skip
        calls.append((seed, seconds, report is not None))
        if report is not None:  # the long search
            assert report_at == pytest.approx([6.0, 12.0]) and initial is None
            report(19.0, np.array([0, 3]), 1.0)
            return SearchResult(np.array([0, 3]), 19.0, 7, seconds, seed=seed)
        return SearchResult(np.array([1, 2]), 21.0, 1, 0.0, seed=seed)

    monkeypatch.setattr(heuristic, "_search", search)
    monkeypatch.setattr(heuristic, "_start_workers", workers_as_threads)
    found = swap_search(reach, weight, 2, seconds=20.0, segment_s=5.0, workers=2)
    # 20 s less 6 s for the window search and 2 s for the last merge: 2 segments of 6 s in
    # this process, seeds 1 and 2; the long search, seed 0, runs the whole 20 s
    assert sorted(calls) == [(0, 20.0, True), (1, 6.0, False), (2, 12.0, False)]
    assert found.segments == 3 and found.workers == 2 and found.rounds == 2 + 7
    assert found.merges == 1 and found.seed == -1 and found.opened.tolist() == [2, 3]
    assert found.covered == 28 == best_by_enumeration(reach, weight, 2)


def test_a_long_search_reports_its_best_plan_when_it_improved():
    reach, weight = instance(9, n_rows=600, n_cand=200, density=0.02)
    reports = []
    options = dict(rounds=None, seed=3, initial=None, stop_at=None, backend="auto")

    def report(value, plan, when):
        reports.append((value, plan.copy(), when))

    found = _search(reach, weight, 15, seconds=2.0, **options, report_at=[0.0, 0.5, 1.0, 1.5],
                    report=report)  # fmt: skip
    assert 1 <= len(reports) <= 4
    values = [value for value, _, _ in reports]
    times = [when for _, _, when in reports]
    assert values == sorted(set(values)) and values[-1] <= found.covered
    assert times == sorted(times) and times[-1] <= 2.0
    for value, plan, _ in reports:
        assert len(set(plan.tolist())) == 15 and value == pytest.approx(
            covered(reach, weight, plan)
        )


def test_a_timed_search_on_two_cores_runs_a_long_search_and_segments():
    reach, weight = instance(9, n_rows=600, n_cand=200, density=0.02)
    found = swap_search(reach, weight, 15, seconds=4.0, segment_s=1.0, workers=2)
    # 4 s less 0.4 s for the last merge: round(3.6 / 1) = 4 segments here, and the long one
    assert found.workers == 2 and 2 <= found.segments <= 5 and found.rounds > 0
    assert len(found.opened) == 15 == len(set(found.opened.tolist()))
    assert found.covered == pytest.approx(covered(reach, weight, found.opened))
    alone = swap_search(reach, weight, 15, seconds=60.0, rounds=0)  # the first local optimum
    assert found.covered >= alone.covered


def test_a_timed_search_inside_a_daemonic_worker_runs_its_segments_in_that_process():
    reach, weight = instance(9, n_rows=600, n_cand=200, density=0.02)
    found = in_a_daemonic_worker(reach, weight, seconds=3.0, segment_s=1.0)
    assert found.workers == 1 and found.segments >= 2
    assert found.covered == pytest.approx(covered(reach, weight, found.opened))


@pytest.mark.parametrize("seed", [7, 8])
def test_every_backend_walks_the_same_search(seed):
    # integer weights: every sum is exact, so the three backends make the same moves and
    # break ties alike, round after round
    reach, weight = instance(seed, n_rows=300, n_cand=80, density=0.04)
    found = {
        backend: swap_search(reach, weight, 7, seconds=60.0, rounds=60, seed=seed, backend=backend)
        for backend in BACKENDS
    }
    plans = {backend: result.opened.tolist() for backend, result in found.items()}
    assert plans["python"] == plans["numpy"] == plans["numba"]
    assert found["numba"].covered == covered(reach, weight, found["numba"].opened)


def test_auto_backend_compiles_only_for_a_perturbing_search(monkeypatch):
    from carecheck.heuristic import _backend

    assert _backend("auto", True, 0) is None  # greedy and swaps only: numpy
    assert _backend("auto", True, None) is kernels.compiled() is not None
    assert _backend("auto", False, None) is None  # no swap bookkeeping at all
    with pytest.raises(ValueError, match="unknown backend 'fortran'"):
        _backend("fortran", True, None)
    monkeypatch.setattr(kernels, "compiled", lambda: None)  # as without numba
    assert _backend("auto", True, None) is None
    with pytest.raises(ImportError, match=r"carecheck\[fast\]"):
        _backend("numba", True, None)


def test_mip_start_is_feasible_and_solvers_keep_the_optimum():
    reach, weight = instance(11, n_rows=120, n_cand=40, density=0.08)
    reduced = reduce_problem(problem_from_reach(reach, weight, 5))
    milp = build_milp(reduced)
    found = mip_start(reduced, milp, seconds=2.0, rounds=20)
    values, value = found.values, found.objective
    assert found.rounds == 20
    activity = milp.matrix @ values
    assert np.all(activity >= milp.row_lower - 1e-9) and np.all(activity <= milp.row_upper + 1e-9)
    assert value == pytest.approx(float(milp.objective @ values) + milp.constant)
    plain = solve_milp(milp, SolverOptions(name="cbc"))
    for name in ("cbc", "highs"):
        started = solve_milp(milp, SolverOptions(name=name), start=values)
        assert started.status == "optimal"
        assert started.objective == pytest.approx(plain.objective)
    assert value <= plain.objective + 1e-9


def test_a_solve_from_a_start_is_never_below_it():
    reach, weight = instance(5, n_rows=60, n_cand=20, density=0.1)
    reduced = reduce_problem(problem_from_reach(reach, weight, 3))
    milp = build_milp(reduced)
    found = mip_start(reduced, milp, seconds=1.0, rounds=0)
    values, value = found.values, found.objective
    # a MILP solver asked to stop at once: whatever it returns, it is never below the start
    # and never called optimal unless proved
    for name in ("cbc", "highs"):
        outcome = solve_milp(milp, SolverOptions(name=name, time_limit_s=1e-3), start=values)
        assert outcome.values is not None and outcome.objective >= value - 1e-9


def test_not_plain_when_other_rows_tie_the_plan():
    reach, weight = instance(3)
    cost = np.ones(12)
    budgeted = reduce_problem(problem_from_reach(reach, weight, 3, cost=cost, budget=2.0))
    assert plain_counts(budgeted) is None
    assert mip_start(budgeted, build_milp(budgeted), seconds=1.0) is None
    assert plain_counts(reduce_problem(problem_from_reach(reach, weight, 3))) == [3]


def test_highs_options_reach_the_solver():
    reach, weight = instance(2)
    milp = build_milp(reduce_problem(problem_from_reach(reach, weight, 3)))
    plain = solve_milp(milp, SolverOptions(name="highs"))
    no_presolve = solve_milp(
        milp, SolverOptions(name="highs", highs_options=(("presolve", "off"),))
    )
    assert no_presolve.objective == pytest.approx(plain.objective)
    with pytest.raises(ValueError, match="no_such_option"):
        solve_milp(milp, SolverOptions(name="highs", highs_options=(("no_such_option", 1),)))


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_restarts_keep_plans_valid_and_still_find_small_optima(seed):
    tuning = heuristic.Tuning(patience=3, patience_per_site=0)  # restart after 3 stale rounds
    reach, weight = instance(seed)
    found = swap_search(reach, weight, 3, seconds=30.0, rounds=150, seed=seed, tuning=tuning)
    assert found.restarts > 0
    assert len(found.opened) == 3 == len(set(found.opened.tolist()))
    assert found.covered == pytest.approx(covered(reach, weight, found.opened))
    assert found.covered == pytest.approx(best_by_enumeration(reach, weight, 3))


def run_fresh(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter (no modules loaded here) and split what it prints."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8"
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


# row i weighs i + 1 and site j reaches rows j - 1 and j: sites 7, 5, 3 cover rows 6-7, 4-5
# and 2-3, 15 + 11 + 7 = 33, the most any 3 sites can (each covers two rows at best)
CHAIN = (
    "import numpy as np, scipy.sparse as sp\n"
    "reach = sp.csr_matrix(np.eye(8, dtype=bool) | np.eye(8, k=1, dtype=bool))\n"
    "weight = np.arange(1.0, 9.0)\n"
)


def test_without_numba_the_search_runs_in_numpy():
    # importing numba fails, as on a machine without the extra
    printed = run_fresh(
        "import sys; sys.modules['numba'] = None\n" + CHAIN + "from carecheck import kernels\n"
        "from carecheck.heuristic import swap_search\n"
        "assert kernels.compiled() is None and kernels.numba is None\n"
        "found = swap_search(reach, weight, 3, rounds=5)\n"
        "plain = swap_search(reach, weight, 3, rounds=5, backend='python')\n"
        "print(found.covered, plain.covered)\n"
    )
    assert printed == ["33.0", "33.0"]


def test_numba_without_a_cache_folder_still_compiles():
    # numba refuses cache=True when it finds no writable cache folder (RuntimeError at
    # decoration); carecheck then compiles without a cache instead of failing the run
    printed = run_fresh(
        "import numba\n"
        "real = numba.njit\n"
        "def refuse(*args, **kwargs):\n"
        "    if kwargs.get('cache'):\n"
        "        raise RuntimeError('cannot cache function: no locator available')\n"
        "    return real(*args, **kwargs)\n"
        "numba.njit = refuse\n" + CHAIN + "from carecheck.heuristic import swap_search\n"
        "print(swap_search(reach, weight, 3, rounds=5, backend='numba').covered)\n"
    )
    assert printed == ["33.0"]


def test_a_scenario_with_threads_searches_side_by_side_and_keeps_the_optimum(
    make_case, tmp_path, monkeypatch
):
    import carecheck
    from carecheck.objectives import max_coverage

    searches = []

    def recorded(*args, **kwargs):
        found = mip_start(*args, **kwargs)
        searches.append((kwargs["workers"], found.rounds))
        return found

    monkeypatch.setattr(max_coverage, "mip_start", recorded)

    rng = np.random.default_rng(5)
    xy, w = rng.uniform(0, 3000, (150, 2)), rng.integers(1, 40, 150)
    demand = [{"id": f"d{i}", "x": x, "y": y, "w": int(w[i])} for i, (x, y) in enumerate(xy)]
    at = rng.uniform(0, 3000, (40, 2))
    sites = [{"id": f"s{j}", "x": x, "y": y} for j, (x, y) in enumerate(at)]
    facilities = {"station": {"radius_m": 450, "count": 5, "candidates": sites}}
    values = {}
    for threads in (None, 2):
        solver = {"time_limit_s": 120, "start_s": 1.0}
        if threads:
            solver["threads"] = threads
        path = make_case(demand, facilities, solver=solver)
        result = carecheck.run_scenario(path, out=tmp_path / f"out{threads}")
        assert result.status == "optimal" and result.verification.ok
        values[threads] = result.objective
    assert values[2] == pytest.approx(values[None])
    # one search, then two side by side (their rounds summed), each perturbing for 1 s
    assert [workers for workers, _ in searches] == [1, 2]
    assert all(rounds > 0 for _, rounds in searches)
