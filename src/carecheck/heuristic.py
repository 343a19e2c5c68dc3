"""A starting plan for the MILP: greedy, improving swaps, then an iterated local search.

For a facility type that only has to open ``count`` of its candidates (no budget, tier,
region or bed rows tying it to anything else), a search on the reduced reach matrix gives the
solver a plan to start from (a MIP start) and a fallback answer if it stops at its time limit
with nothing better. The MILP stays the judge: the search proves nothing.

Swap arithmetic, kept up to date move by move (all vectorised, never a loop over pairs). With
:math:`h_i` the number of open sites reaching row :math:`i`:

- ``gain[j]`` = weight of rows :math:`j` reaches with :math:`h_i = 0` (opening :math:`j`);
- ``alone[k]`` = weight of rows with :math:`h_i = 1` that :math:`k` reaches — for an open
  :math:`k`, what closing it loses;
- ``both[s, j]`` = weight of rows whose only open site sits in slot :math:`s` and that
  :math:`j` also reaches — closing that site and opening :math:`j` keeps them.

Closing the site in slot ``s`` and opening ``j`` changes the coverage by
``gain[j] − alone[site[s]] + both[s, j]``; every slot's best swap is one pass over the dense
``both`` (open sites × candidates). A move touches only the rows the two sites reach: their
``h`` and their sole open site (kept as the sum of the open sites' ids, which is the site itself
when ``h = 1``) change, and ``gain``, ``alone`` and ``both`` are corrected for those rows alone.
A swap can only improve when ``gain[j] > 0``.

Descent: from one pass, the slots' improving swaps are taken best first, each unless a row one
of its two sites reaches was reached by a swap already taken; such swaps do not change each
other's terms, so the batch gains exactly the sum of its scores. Passes repeat until no swap
improves (a local optimum for single swaps).

Iterated local search (``seconds`` or ``rounds`` > 0), after the first local optimum:

1. *perturb*: move ω random open sites each to a random closed candidate sharing a reach row
   with it (ω drawn from 1 … ⌈3p/8⌉), then descend;
2. *elite and path relinking*: the local optima are offered to a pool of up to 10 good and
   mutually different plans; each round walks from the new local optimum to a pool plan (or
   back), swapping in the best order, and the best plan on the way is descended too;
3. *acceptance*: the new local optimum replaces the current plan when it is at least
   ``best − η (best − mean)`` of the last 50 local optima; η adapts so that about 40 % are
   accepted;
4. *restart*: after max(300, 10p) rounds without a better local optimum since the last
   (re)start, start again from a randomised greedy plan (one of the three best sites at each
   step); the elite pool is kept, so path relinking joins plans from different starts.

It stops after ``rounds`` rounds, at the time budget, or when every row is covered; the best
plan seen is returned. Seeded: the same input, seed and number of rounds give the same plan;
when the time budget is what stops it, only the value — never feasibility — can vary.

Speed: with numba installed (``carecheck[fast]``), moves, swap scoring and the relinking walk
run as the compiled loops of ``carecheck.kernels`` (same arithmetic, same moves); else in numpy.
The compiled loops are used when the search perturbs; their compile time and rounds per second
against numpy are measured by ``benchmarks/swap_search.py`` (figures in
``benchmarks/README.md``).

Segments and merging (a timed search: ``seconds`` given, ``rounds`` not, and at least 10 s,
several cores or ``segment_s`` given): the time is cut into independent searches of about max(5
s, ``seconds``/12) each, every one with its own seed and its own elite pool, run one after
another (in this process, and in spawned processes on further cores). Runs from different seeds
end in different places, and each tends to be good somewhere else. So after every segment that
brings columns no earlier plan had, the plans are *merged*: the covering problem restricted to
the union of their columns (a few times ``count``) is solved exactly by HiGHS, starting from
the best plan, and the result, polished by improving swaps, becomes the best plan if it covers
more. 10 % of the time (at most one segment), just before the windows below, is kept for a
final merge of every plan. Some plans are only found by a search longer than a segment, so on
several cores one core runs a single search over the whole time instead (a hybrid); its best
plan so far joins the merges at every segment's end. Why these schedules:
``benchmarks/README.md`` ("Search alone over seeds", measured with
``benchmarks/search_seeds.py``).

Windows (the last ``Tuning.lns_share`` = 30 % of a timed search, in this process, from the
best plan after the last merge; :func:`window_search`): a large neighbourhood search whose steps are
solved exactly. A step frees the open sites nearest, in the reach graph, to an open site drawn
at random or (half the time) to an uncovered row drawn by weight (12 sites at first), and
HiGHS picks as many columns to open instead, from those reaching a row only freed sites cover
or an uncovered row next to them, starting from the freed sites, so a step never covers less.
It makes the moves single swaps cannot: several sites moved at once in one part of the map.
The window grows after fast steps and shrinks after steps that hit their 5 s limit. On
several cores the long search runs on meanwhile, and the better of the two plans is returned.

Memory: ``both`` holds count × candidates floats; above ``_PAIR_LIMIT`` entries the search
stops at the greedy plan.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp

from carecheck.model import (
    INF,
    Milp,
    ReducedProblem,
    column_layout,
    covering_milp,
    linked_positions,
)

_PAIR_LIMIT = 12_500_000  # entries of the dense ``both`` matrix (100 MB, and as much scratch)
_ELITE = 10  # plans kept for path relinking
_ELITE_DISTANCE = 2  # a pool plan differs from every other in at least this many sites
_WINDOW = 50  # local optima the acceptance threshold looks back on
_TARGET_ACCEPT = 0.4  # share of local optima accepted, steered by eta
_RESTART_TOP = 3  # a restart's greedy picks one of the best few at each step
_RESYNC = 500  # rounds between recomputing the bookkeeping from scratch (float drift)
_LONG_SEARCHES = 1  # on several cores, this many run one long search instead of segments
_LNS_SITES = 12  # open sites a window frees at first …
_LNS_MIN_SITES = 6  # … and at least, once it shrank
_LNS_LIMIT_S = 5.0  # HiGHS time limit for one window
_LNS_UNCOVERED = 0.5  # share of windows around an uncovered row (else around an open site)


@dataclass(frozen=True)
class Tuning:
    """Tuning knobs of a search (:func:`swap_search`'s ``tuning``): the timed search's schedule
    (read where it is made, in the calling process) and the restarts' patience."""

    segments: int = 12  # a timed search runs as about this many independent searches per core …
    segment_min_s: float = 5.0  # … each at least this long
    segment_growth: float = 1.0  # each segment this many times as long as the one before
    merge_share: float = 0.1  # of the time budget kept for the last merge (at most one segment)
    lns_share: float = 0.3  # of a timed search's time for the window search at the end
    patience: int = 300  # rounds without a better local optimum: restart …
    patience_per_site: int = 10  # … or this many per site to open, if more


@dataclass(frozen=True)
class SearchResult:
    """A plan of ``count`` candidate positions and the weight it covers."""

    opened: np.ndarray  # positions into the reach matrix's columns, sorted
    covered: float
    rounds: int  # perturbation rounds made
    seconds: float
    found_s: float = 0.0  # when the returned plan was first reached
    restarts: int = 0
    seed: int = 0  # the seed of the search that found it (-1: a merge of several plans)
    workers: int = 1  # searches run side by side (whose results came back)
    segments: int = 1  # independent searches run, over all workers
    merges: int = 0  # merges that found a plan better than every plan they merged
    window_steps: int = 0  # steps of the window search at the end (:func:`window_search`)


def _spans(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """Column indices of ``rows`` of a CSR structure, concatenated, and each row's length."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    offsets = np.cumsum(lengths) - lengths
    flat = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - starts, lengths)
    return indices[flat], lengths


class _Plan:
    """Open sites of one reach matrix with the swap bookkeeping, updated move by move."""

    def __init__(
        self,
        reach: sp.spmatrix,
        weight: np.ndarray,
        count: int,
        pairs: bool,
        kernels: SimpleNamespace | None = None,
    ) -> None:
        rows = sp.csr_matrix(reach, dtype=np.float64)
        rows.sort_indices()
        cols = sp.csc_matrix(rows)
        cols.sort_indices()
        self.rows = sp.csr_matrix(rows, dtype=np.int64)  # for recounts from scratch
        self.row_ptr = rows.indptr.astype(np.int64)
        self.row_idx = rows.indices.astype(np.int64)
        self.col_ptr = cols.indptr.astype(np.int64)
        self.col_idx = cols.indices.astype(np.int64)
        self.weight = np.asarray(weight, dtype=np.float64)
        self.n_rows, self.n_cand = rows.shape
        self.pairs = pairs
        self.hits = np.zeros(self.n_rows, dtype=np.int64)
        self.id_sum = np.zeros(self.n_rows, dtype=np.int64)  # sum of open sites reaching i
        self.slot = np.full(self.n_cand, -1, dtype=np.int64)  # slot of an open site, else -1
        self.site = np.full(count, -1, dtype=np.int64)  # site in each slot, -1 = free
        self.gain = np.zeros(self.n_cand)
        self.alone = np.zeros(self.n_cand)
        # stored candidates × slots, so that one candidate's slots are adjacent in memory
        self.both_t = np.zeros((self.n_cand, count if pairs else 0))
        self.both = self.both_t.T  # slots × candidates, a view
        self.kernels = kernels  # compiled (or plain Python) loops; None: numpy
        if kernels is None:
            self._scratch = np.empty_like(self.both_t)  # swap values, numpy path only
        else:
            self._mark = np.zeros(self.n_rows, dtype=bool)
            self._buffers = [np.empty(self.n_rows, dtype=np.int64) for _ in range(3)]
        self.covered = 0.0
        self.resync()

    # ------------------------------------------------------------------ bookkeeping

    def column(self, j: int) -> np.ndarray:
        return self.col_idx[self.col_ptr[j] : self.col_ptr[j + 1]]

    def opened(self) -> np.ndarray:
        return np.sort(self.site[self.site >= 0])

    def resync(self) -> None:
        """Recompute everything from the open sites (no drift from repeated float updates)."""
        open_sites = self.site[self.site >= 0]
        x = np.zeros(self.n_cand, dtype=np.int64)
        x[open_sites] = 1
        self.hits = self.rows @ x
        self.id_sum = self.rows @ (x * np.arange(self.n_cand, dtype=np.int64))
        zero = self.weight * (self.hits == 0)
        one = self.weight * (self.hits == 1)
        self.gain = self.rows.T @ zero
        self.alone = self.rows.T @ one
        self.covered = float(self.weight[self.hits > 0].sum())
        if self.pairs:
            self.both_t[:] = 0.0
            single = np.flatnonzero(self.hits == 1)
            cands, lengths = _spans(self.row_ptr, self.row_idx, single)
            owner = np.repeat(self.slot[self.id_sum[single]], lengths)
            at = cands * self.both_t.shape[1] + owner
            np.add.at(self.both_t.reshape(-1), at, np.repeat(one[single], lengths))

    def _kernel_state(self) -> tuple:
        """The arrays a compiled move reads and updates, in the kernels' argument order (read
        at each call: ``resync`` replaces some of them)."""
        return (
            self.col_ptr, self.col_idx, self.row_ptr, self.row_idx, self.weight, self.hits,
            self.id_sum, self.slot, self.site, self.gain, self.alone, self.both_t, self.pairs,
            self._mark, *self._buffers,
        )  # fmt: skip

    def apply(self, close: np.ndarray | list[int], open_: np.ndarray | list[int]) -> None:
        """Close the sites ``close`` and open ``open_`` (disjoint; free slots must suffice)."""
        close = np.asarray(close, dtype=np.int64)
        open_ = np.asarray(open_, dtype=np.int64)
        if len(close) + len(open_) == 0:
            return
        if self.kernels is not None:
            self.covered += self.kernels.apply_move(close, open_, *self._kernel_state())
            return
        touched = np.unique(np.concatenate([self.column(int(j)) for j in (*close, *open_)]))
        old_hits, old_sum = self.hits[touched], self.id_sum[touched]
        for k in close:
            rows = self.column(int(k))
            self.hits[rows] -= 1
            self.id_sum[rows] -= k
        for j in open_:
            rows = self.column(int(j))
            self.hits[rows] += 1
            self.id_sum[rows] += j
        new_hits, new_sum = self.hits[touched], self.id_sum[touched]
        w = self.weight[touched]
        self.covered += float(w[new_hits > 0].sum() - w[old_hits > 0].sum())
        # only rows with h ≤ 1 before or after, whose count or sole site changed, matter
        matter = ((old_hits <= 1) | (new_hits <= 1)) & (
            (old_hits != new_hits) | (old_sum != new_sum)
        )
        touched, w = touched[matter], w[matter]
        old_hits, old_sum = old_hits[matter], old_sum[matter]
        new_hits, new_sum = new_hits[matter], new_sum[matter]
        cands, lengths = _spans(self.row_ptr, self.row_idx, touched)
        for target, old, new in (
            (self.gain, old_hits == 0, new_hits == 0),
            (self.alone, old_hits == 1, new_hits == 1),
        ):
            change = w * (new.astype(np.float64) - old)
            target += np.bincount(cands, weights=np.repeat(change, lengths), minlength=self.n_cand)
        flat = self.both_t.reshape(-1)
        width = self.both_t.shape[1]
        was_single = np.repeat(old_hits == 1, lengths)
        if self.pairs and was_single.any():
            owner = self.slot[np.where(old_hits == 1, old_sum, 0)]
            at = cands[was_single] * width + np.repeat(owner, lengths)[was_single]
            np.subtract.at(flat, at, np.repeat(w, lengths)[was_single])
        for k in close:
            self.site[self.slot[k]] = -1
            self.slot[k] = -1
        if len(open_):
            free = np.flatnonzero(self.site < 0)[: len(open_)]
            self.site[free] = open_
            self.slot[open_] = free
        is_single = np.repeat(new_hits == 1, lengths)
        if self.pairs and is_single.any():
            owner = self.slot[np.where(new_hits == 1, new_sum, 0)]
            at = cands[is_single] * width + np.repeat(owner, lengths)[is_single]
            np.add.at(flat, at, np.repeat(w, lengths)[is_single])

    # ------------------------------------------------------------------ moves

    def open_gain(self) -> np.ndarray:
        gain = self.gain.copy()
        gain[self.site[self.site >= 0]] = -np.inf
        return gain

    def independent_swaps(self, tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Improving swaps (close, open, change) on disjoint rows, best first; none at a local
        optimum.

        Each slot's best swap is scored as in the module docstring; a swap is kept when none of
        the rows its two sites reach was reached by a swap kept before it. Swaps on disjoint
        rows do not change each other's ``gain``, ``alone`` or ``both`` terms, so together
        they change the coverage by the sum of their scores.
        """
        none = np.zeros(0, dtype=np.int64)
        if np.any(self.site < 0):
            return none, none, np.zeros(0)
        if self.kernels is not None:
            return self.kernels.best_swaps(
                self.site, self.slot, self.gain, self.alone, self.both_t, tolerance,
                self.col_ptr, self.col_idx, self._mark,
            )  # fmt: skip
        gain = np.where(self.gain > tolerance, self.gain, -np.inf)
        gain[self.site] = -np.inf  # only a closed j with gain > 0 can make a swap improve
        if not np.isfinite(gain).any():
            return none, none, np.zeros(0)
        value = np.add(self.both_t, gain[:, None], out=self._scratch)
        column = value.argmax(axis=0)
        change = value[column, np.arange(len(column))] - self.alone[self.site]
        order = np.argsort(-change, kind="stable")
        order = order[change[order] > tolerance]
        used = np.zeros(self.n_rows, dtype=bool)
        leave: list[int] = []
        enter: list[int] = []
        score: list[float] = []
        for s in order:
            k, j = int(self.site[s]), int(column[s])
            rows_k, rows_j = self.column(k), self.column(j)
            if used[rows_k].any() or used[rows_j].any():
                continue
            used[rows_k] = True
            used[rows_j] = True
            leave.append(k)
            enter.append(j)
            score.append(float(change[s]))
        return np.array(leave, dtype=np.int64), np.array(enter, dtype=np.int64), np.array(score)

    def descend(self, tolerance: float, deadline: float) -> None:
        """Apply batches of independent improving swaps until none is left."""
        while time.perf_counter() < deadline:
            leave, enter, _ = self.independent_swaps(tolerance)
            if len(leave) == 0:
                return
            self.apply(leave, enter)

    def fill(self, count: int, rng: np.random.Generator | None = None, top: int = 1) -> None:
        """Open ``count`` more sites one by one, each covering the most uncovered weight
        (with ``rng``: one of the ``top`` best at random)."""
        for _ in range(min(count, int((self.slot < 0).sum()), int((self.site < 0).sum()))):
            gain = self.open_gain()
            if rng is None or top <= 1:
                j = int(np.argmax(gain))
            else:
                best = np.argpartition(-gain, min(top, len(gain) - 1))[:top]
                best = best[np.isfinite(gain[best])]
                j = int(rng.choice(best))
            self.apply([], [j])

    def move_to(self, plan: np.ndarray) -> None:
        want = np.zeros(self.n_cand, dtype=bool)
        want[plan] = True
        now = self.site[self.site >= 0]
        self.apply(now[~want[now]], plan[self.slot[plan] < 0])

    def relink(self, target: np.ndarray) -> np.ndarray | None:
        """Walk to ``target`` by the best swap inside the difference at each step; the best
        plan strictly between the two ends (None when they differ by one site or less)."""
        inside = np.zeros(self.n_cand, dtype=bool)
        inside[target] = True
        if self.kernels is not None:
            out = self.site[~inside[self.site]]
            into = np.asarray(target, dtype=np.int64)[self.slot[target] < 0]
            if len(out) <= 1:
                return None
            closed, opened, values = self.kernels.relink_walk(
                out, into, self.covered, *self._kernel_state()
            )
            self.covered = float(values[-1])
            t = int(np.argmax(values)) + 1  # the first best step; undo the steps after it
            return np.union1d(np.setdiff1d(self.opened(), opened[t:]), closed[t:])
        leave = [int(k) for k in self.site if not inside[k]]
        enter = [int(j) for j in target if self.slot[j] < 0]
        best, best_value = None, -np.inf
        while len(leave) > 1:
            ks, js = np.array(leave), np.array(enter)
            value = self.both[np.ix_(self.slot[ks], js)] + self.gain[js] - self.alone[ks, None]
            a, b = np.unravel_index(int(np.argmax(value)), value.shape)
            self.apply([leave.pop(int(a))], [enter.pop(int(b))])
            if self.covered > best_value:
                best, best_value = self.opened(), self.covered
        return best


class _Elite:
    """Up to ``_ELITE`` good plans, each at least ``_ELITE_DISTANCE`` sites from the others."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.plans: list[tuple[float, np.ndarray]] = []

    def offer(self, value: float, plan: np.ndarray) -> None:
        for i, (other_value, other) in enumerate(self.plans):
            if self.distance(plan, other) < _ELITE_DISTANCE:
                if value > other_value:
                    self.plans[i] = (value, plan)
                return
        if len(self.plans) < _ELITE:
            self.plans.append((value, plan))
            return
        worst = min(range(len(self.plans)), key=lambda i: self.plans[i][0])
        if value > self.plans[worst][0]:
            self.plans[worst] = (value, plan)

    def distance(self, a: np.ndarray, b: np.ndarray) -> int:
        return self.count - len(np.intersect1d(a, b, assume_unique=True))


def greedy(reach: sp.spmatrix, weight: np.ndarray, count: int) -> np.ndarray:
    """``count`` positions opened one by one, each covering the most still-uncovered weight."""
    count = min(int(count), reach.shape[1])
    plan = _Plan(reach, weight, count, pairs=False)
    plan.fill(count)
    return plan.opened()


def _backend(name: str, pairs: bool, rounds: int | None) -> SimpleNamespace | None:
    if name == "numpy" or not pairs or (name == "auto" and rounds is not None and rounds <= 0):
        return None  # auto without rounds: numpy (numba's import alone costs ~0.2 s)
    from carecheck import kernels as _kernels  # imports numba (if installed) only when needed

    if name == "python":
        return _kernels.PLAIN
    if name == "numba":
        found = _kernels.compiled()
        if found is None:
            raise ImportError("backend='numba' needs numba: pip install carecheck[fast]")
        return found
    if name != "auto":
        raise ValueError(f"unknown backend {name!r}: use auto, numba, numpy or python")
    return _kernels.compiled() if rounds is None or rounds > 0 else None


def swap_search(
    reach: sp.spmatrix,
    weight: np.ndarray,
    count: int,
    *,
    seconds: float = 10.0,
    rounds: int | None = None,
    seed: int = 0,
    initial: np.ndarray | None = None,
    stop_at: float | None = None,
    backend: str = "auto",
    workers: int = 1,
    segment_s: float | None = None,
    tuning: Tuning | None = None,
) -> SearchResult:
    """Open ``count`` of the reach matrix's columns to cover the most row weight (heuristic).

    Greedy (or ``initial``), then best-improvement swaps, then the iterated local search of the
    module docstring until ``seconds`` have passed, ``rounds`` rounds were made, every row is
    covered or a plan covers ``stop_at`` (a known optimum or bound, e.g. in a benchmark).

    ``backend``: ``"numba"`` (the compiled loops of ``carecheck.kernels``), ``"numpy"``,
    ``"python"`` (the same loops uncompiled: slow, for tests) or ``"auto"``: numba when it is
    installed and the search perturbs (``rounds`` ≠ 0), where compiling pays off, else numpy.

    A timed search (``rounds`` None) of at least 10 s, or on several cores, or with
    ``segment_s`` given, runs as independent segments of ``segment_s`` seconds (default
    max(5, ``seconds``/12)) whose plans are merged exactly (:func:`merge_plans`); see the module
    docstring. Seeds: ``seed``, ``seed + 1``, … With ``workers`` > 1, one spawned process runs a
    single long search (seed ``seed``, from ``initial``) and this process and the other
    ``workers − 2`` run the segments (seeds ``seed + 1``, ``seed + 2``, … for the first
    segments, then on in steps of ``workers − 1``); a search that reaches ``stop_at`` or covers
    everything stops the others at the end of their round. The last 30 % of the time goes to
    :func:`window_search` on the best plan (in this process; the long search runs on).

    With ``rounds`` given there are no segments: ``workers`` > 1 runs that many whole searches
    with seeds ``seed``, ``seed + 1``, … side by side and returns the best plan (on a tie, the
    lowest seed's); the answer is the same on every run. Inside a daemonic process (a pool or
    Dask worker), which may not start processes of its own, everything runs in that process.

    ``tuning``: the schedule and restart settings (default :class:`Tuning`, the measured ones).
    """
    tuning = Tuning() if tuning is None else tuning
    options: dict[str, Any] = dict(
        seconds=seconds, rounds=rounds, seed=seed, initial=initial, stop_at=stop_at,
        backend=backend, tuning=tuning,
    )  # fmt: skip
    n_cand = reach.shape[1]
    if multiprocessing.current_process().daemon:
        workers = 1  # a pool or Dask worker may not start processes
    timed = rounds is None and seconds > 0 and _searchable(min(int(count), n_cand), n_cand)
    if timed and (workers > 1 or segment_s is not None or seconds >= 2 * tuning.segment_min_s):
        return _segmented(reach, weight, count, workers, options, segment_s)
    if workers > 1 and rounds != 0 and seconds > 0:
        return _side_by_side(reach, weight, count, workers, options)
    return _search(reach, weight, count, **options)


def _searchable(count: int, n_cand: int) -> bool:
    """Whether swaps are possible and the dense ``both`` matrix fits the memory guard."""
    return 0 < count < n_cand and count * n_cand <= _PAIR_LIMIT


def _first_plan(plan: _Plan, count: int, initial: np.ndarray | None) -> None:
    """Open the greedy plan, or the sites of ``initial`` (the first ``count`` distinct ones)
    completed greedily."""
    if initial is None:
        plan.fill(count)
    else:
        plan.apply([], np.unique(np.asarray(initial, dtype=np.int64))[:count])
        plan.fill(count - int((plan.site >= 0).sum()))


class _Reports:
    """Calls ``report(covered, opened, found_s)`` with the best plan so far at the first round
    ending after each of the times ``at`` (seconds after ``began``, on the ``perf_counter``
    clock) when it improved since the last report; never without ``report``."""

    def __init__(self, report: Any, at: list[float] | None, began: float) -> None:
        self.report = report
        self.times = [began + t for t in at or []] if report is not None else []
        self.reported = -INF

    def after_round(
        self, best_value: float, best: np.ndarray, found: float, tolerance: float
    ) -> None:
        if self.times and time.perf_counter() >= self.times[0]:
            while self.times and time.perf_counter() >= self.times[0]:
                self.times.pop(0)
            if best_value > self.reported + tolerance:
                self.report(best_value, best, found)
                self.reported = best_value


class _Rounds:
    """The iterated local search from a local optimum (steps 1–4 of the module docstring), one
    round at a time, and the best plan it has seen (``best``, ``best_value``, found ``found``
    seconds after ``began``)."""

    def __init__(
        self,
        plan: _Plan,
        count: int,
        rng: np.random.Generator,
        patience: int,
        *,
        tolerance: float,
        deadline: float,
        began: float,
        best: np.ndarray,
        best_value: float,
        found: float,
    ) -> None:
        self.plan, self.count, self.rng, self.patience = plan, count, rng, patience
        self.tolerance, self.deadline, self.began = tolerance, deadline, began
        self.best, self.best_value, self.found = best, best_value, found
        self.elite = _Elite(count)
        self.elite.offer(best_value, best)
        self.current = best
        self.recent = [best_value]
        self.eta, self.accepted = 0.5, 0
        self.epoch_value, self.stale, self.restarts = best_value, 0, 0
        self.widest = max(2, -(-3 * count // 8))
        self.done = 0

    def round(self) -> None:
        """Perturb and descend, relink, accept or go back, restart when stale."""
        self.done += 1
        value, here = self._perturb()
        self._record(value, here)
        self._relink(here)
        self._accept(value, here)
        if self.stale >= self.patience:  # 4. restart from a new randomised greedy plan
            self._restart()
        if self.done % _RESYNC == 0:
            self.plan.resync()

    def _perturb(self) -> tuple[float, np.ndarray]:
        """1. Move omega open sites each to a closed candidate sharing a row with it, then
        descend; the local optimum reached (its coverage and sites)."""
        plan, rng = self.plan, self.rng
        omega = int(rng.integers(1, self.widest + 1))
        leave = rng.choice(plan.site, size=min(omega, self.count), replace=False)
        taken = np.zeros(plan.n_cand, dtype=bool)
        enter = []
        for k in leave:
            enter.append(self._neighbour(int(k), taken))
        plan.apply(leave, enter)
        plan.descend(self.tolerance, self.deadline)
        return plan.covered, plan.opened()

    def _neighbour(self, k: int, taken: np.ndarray) -> int:
        """A random closed candidate, not ``taken``, sharing a random row with the open site
        ``k`` (any closed one not taken when there is none); marked taken."""
        plan, rng = self.plan, self.rng
        rows = plan.column(k)
        i = rows[rng.integers(len(rows))]
        near = plan.row_idx[plan.row_ptr[i] : plan.row_ptr[i + 1]]
        near = near[(plan.slot[near] < 0) & ~taken[near]]
        if len(near) == 0:
            near = np.flatnonzero((plan.slot < 0) & ~taken)
        j = int(near[rng.integers(len(near))])
        taken[j] = True
        return j

    def _record(self, value: float, here: np.ndarray) -> None:
        """Offer a local optimum to the elite pool and as the best plan; count stale rounds."""
        self.elite.offer(value, here)
        if value > self.best_value + self.tolerance:
            self.best, self.best_value, self.found = here, value, time.perf_counter() - self.began
        if value > self.epoch_value + self.tolerance:
            self.epoch_value, self.stale = value, 0
        else:
            self.stale += 1

    def _relink(self, here: np.ndarray) -> None:
        """2. Path relinking between the local optimum ``here`` and a pool plan, then back."""
        plan = self.plan
        partner = self.elite.plans[int(self.rng.integers(len(self.elite.plans)))][1]
        if self.elite.distance(here, partner) >= 3 and time.perf_counter() < self.deadline:
            if self.rng.random() < 0.5:
                middle = plan.relink(partner)
            else:
                plan.move_to(partner)
                middle = plan.relink(here)
            if middle is not None:
                self._descend_from(middle)
            plan.move_to(here)  # back: the bookkeeping follows any move exactly

    def _descend_from(self, middle: np.ndarray) -> None:
        """Descend from the best plan on a relinking walk and offer what it reaches."""
        plan = self.plan
        plan.move_to(middle)
        plan.descend(self.tolerance, self.deadline)
        self.elite.offer(plan.covered, plan.opened())
        if plan.covered > self.best_value + self.tolerance:
            self.best, self.best_value = plan.opened(), plan.covered
            self.found = time.perf_counter() - self.began

    def _accept(self, value: float, here: np.ndarray) -> None:
        """3. Accept the local optimum or return to the current plan; steer eta."""
        self.recent = [*self.recent[-(_WINDOW - 1) :], value]
        top, mean = max(self.recent), sum(self.recent) / len(self.recent)
        if value >= top - self.eta * (top - mean) - self.tolerance:
            self.accepted += 1
            self.current = here
        else:
            self.plan.move_to(self.current)
        if self.done % _WINDOW == 0:
            step = 0.05 if self.accepted < _TARGET_ACCEPT * _WINDOW else -0.05
            self.eta = min(1.0, max(0.0, self.eta + step))
            self.accepted = 0

    def _restart(self) -> None:
        """4. Start again from a randomised greedy plan (the elite pool is kept)."""
        plan = self.plan
        plan.move_to(np.zeros(0, dtype=np.int64))
        plan.fill(self.count, self.rng, top=_RESTART_TOP)
        plan.descend(self.tolerance, self.deadline)
        self.current, self.epoch_value, self.stale = plan.opened(), plan.covered, 0
        self.recent = [self.epoch_value]
        self.restarts += 1


def _search(
    reach: sp.spmatrix,
    weight: np.ndarray,
    count: int,
    *,
    seconds: float,
    rounds: int | None,
    seed: int,
    initial: np.ndarray | None,
    stop_at: float | None,
    backend: str,
    tuning: Tuning | None = None,
    stop: Any = None,
    began: float | None = None,
    report: Any = None,
    report_at: list[float] | None = None,
) -> SearchResult:
    """One search (see :func:`swap_search`). ``stop``: an event other searches may set, and
    this one sets when it reaches ``stop_at``; ``began``: when the caller started (seconds on
    the ``time.time`` clock, which processes share), for ``seconds`` and ``found_s``;
    ``report(covered, opened, found_s)`` is called with the best plan so far at the first round
    ending after each of the ``report_at`` times (seconds after ``began``) when it improved
    since the last report. ``tuning``: default :class:`Tuning`."""
    began = time.perf_counter() - (0.0 if began is None else max(0.0, time.time() - began))
    deadline = began + max(0.0, seconds)
    n_cand = reach.shape[1]
    count = min(int(count), n_cand)
    pairs = _searchable(count, n_cand)
    plan = _Plan(reach, weight, count, pairs=pairs, kernels=_backend(backend, pairs, rounds))
    total = float(plan.weight[np.diff(plan.row_ptr) > 0].sum())  # all a plan could cover
    enough = total if stop_at is None else min(total, stop_at)
    tolerance = 1e-9 * max(1.0, total)
    _first_plan(plan, count, initial)
    if pairs:
        plan.descend(tolerance, deadline)
    best, best_value, found = plan.opened(), plan.covered, time.perf_counter() - began
    done = 0
    if not pairs or best_value >= enough - tolerance:
        if stop is not None and best_value >= enough - tolerance:
            stop.set()
        return SearchResult(best, best_value, done, time.perf_counter() - began, found, seed=seed)
    tuning = Tuning() if tuning is None else tuning
    search = _Rounds(
        plan, count, np.random.default_rng(seed),
        max(tuning.patience, tuning.patience_per_site * count),
        tolerance=tolerance, deadline=deadline, began=began, best=best, best_value=best_value,
        found=found,
    )  # fmt: skip
    reports = _Reports(report, report_at, began)
    while (rounds is None or search.done < rounds) and time.perf_counter() < deadline:
        search.round()
        reports.after_round(search.best_value, search.best, search.found, tolerance)
        if search.best_value >= enough - tolerance:
            break
        if stop is not None and stop.is_set():
            break
    if stop is not None and search.best_value >= enough - tolerance:
        stop.set()
    return SearchResult(
        search.best, search.best_value, search.done, time.perf_counter() - began, search.found,
        search.restarts, seed=seed,
    )  # fmt: skip


def _in_worker(
    results: Any, stop: Any, index: int, problem: tuple, options: dict[str, Any], began: float
) -> None:
    """A worker process's search (seed ``seed + index``): its result goes to ``results``,
    then ``None`` (done), which is sent even when the search failed."""
    try:
        mine = {**options, "seed": options["seed"] + index}
        results.put((index, _search(*problem, **mine, stop=stop, began=began)))
    finally:  # the caller keeps its own plan: never leave it waiting
        results.put((index, None))


def _ending_with_parent(target: Any, *args: Any) -> None:
    """Run ``target(*args)`` in a worker that ends as soon as its parent process is gone (killed
    with -9 or SIGTERM, crashed): a thread waits on the parent's sentinel and ends the process,
    so a dead run leaves no search burning CPU."""
    parent = multiprocessing.parent_process()
    if parent is not None:

        def watch() -> None:
            parent.join()
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="carecheck-parent-watch").start()
    target(*args)


def _start_workers(workers: int, target: Any, args: tuple) -> tuple[Any, Any, list[Any]]:
    """Spawn ``target(results, stop, index, *args)`` for index 1 … ``workers − 1`` (spawn, not
    fork, on every platform: the same behaviour on Windows and Linux); returns the shared stop
    event, the result queue and the processes."""
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    processes = []
    for index in range(1, workers):
        process = context.Process(
            target=_ending_with_parent, args=(target, results, stop, index, *args), daemon=True
        )
        process.start()
        processes.append(process)
    return stop, results, processes


def _await_workers(
    results: Any,
    processes: list[Any],
    waiting: set[int],
    take: Any,
    awaited: set[int] | None = None,
) -> None:
    """Hand each result a worker sends to ``take`` until every worker in ``awaited`` (default:
    all in ``waiting``) has sent ``None`` (done) or died without a word (killed, out of
    memory): a worker found dead before a second with nothing to read is not awaited (it sends
    ``None`` before exiting). Workers done are removed from ``waiting``."""
    while waiting & (waiting if awaited is None else awaited):
        dead = {i for i in waiting if not processes[i - 1].is_alive()}
        try:
            index, result = results.get(timeout=1.0)
        except queue.Empty:
            waiting -= dead
            continue
        if result is None:
            waiting.discard(index)
        else:
            take(index, result)


def _stop_workers(stop: Any, processes: list[Any]) -> None:
    """Tell the workers to stop after their round; end any still running 10 s later."""
    stop.set()
    for process in processes:
        process.join(timeout=10.0)
        if process.is_alive():
            process.terminate()


def _side_by_side(
    reach: sp.spmatrix, weight: np.ndarray, count: int, workers: int, options: dict[str, Any]
) -> SearchResult:
    """``workers`` searches with consecutive seeds: this process and ``workers − 1`` spawned
    ones."""
    began_wall, began = time.time(), time.perf_counter()
    problem = (sp.csr_matrix(reach), np.asarray(weight, dtype=np.float64), count)
    stop, results, processes = _start_workers(workers, _in_worker, (problem, options, began_wall))
    found: dict[int, SearchResult] = {}

    def take(index: int, result: SearchResult) -> None:
        found[index] = result

    try:
        take(0, _search(*problem, **options, stop=stop, began=began_wall))
        _await_workers(results, processes, set(range(1, workers)), take)
    finally:
        _stop_workers(stop, processes)
    best = max(found, key=lambda i: (found[i].covered, -i))
    return replace(
        found[best],
        rounds=sum(r.rounds for r in found.values()),
        restarts=sum(r.restarts for r in found.values()),
        seconds=time.perf_counter() - began,
        seed=options["seed"] + best,
        workers=len(found),
    )


def merge_plans(
    reach: sp.spmatrix,
    weight: np.ndarray,
    count: int,
    plans: list[np.ndarray],
    *,
    seconds: float,
    start: np.ndarray | None = None,
) -> np.ndarray | None:
    """The best ``count`` columns among those the ``plans`` (and ``start``) open, or None.

    An exact maximal covering problem restricted to the union of the plans' columns, solved by
    HiGHS (one thread) for at most ``seconds``, with ``start`` (a plan inside the union) as its
    MIP start, so the answer never covers less than ``start``. Plans from independent searches
    tend to be good in different places; the union is a few times ``count`` columns, small
    enough to solve exactly in seconds. None when the union has no more than ``count`` columns
    (nothing to choose).
    """
    given = [np.asarray(plan, dtype=np.int64) for plan in plans]
    if start is not None:
        given.append(np.asarray(start, dtype=np.int64))
    columns = np.unique(np.concatenate(given)) if given else np.zeros(0, dtype=np.int64)
    if len(columns) <= count:
        return None
    sub = sp.csr_matrix(sp.csc_matrix(reach)[:, columns], dtype=np.float64)
    rows = np.flatnonzero(np.diff(sub.indptr) > 0)
    start_x = None if start is None else np.isin(columns, start)
    chosen, _ = _solve_covering(sub[rows], np.asarray(weight)[rows], count, start_x, seconds)
    return None if chosen is None else columns[chosen]


def _solve_covering(
    sub: sp.csr_matrix,
    weight: np.ndarray,
    count: int,
    start: np.ndarray | None,
    seconds: float,
) -> tuple[np.ndarray | None, bool]:
    """Exactly ``count`` of ``sub``'s columns covering the most row weight, by HiGHS (one
    thread, at most ``seconds``), from the boolean plan ``start``: the chosen columns (boolean,
    None when HiGHS returned no plan) and whether they are proven optimal."""
    from carecheck.solve import SolverOptions, solve_milp  # solve imports nothing from here

    n_x = sub.shape[1]
    milp = covering_milp(sub, weight, count)
    values = None
    if start is not None:
        x = np.asarray(start, dtype=np.float64)
        values = np.concatenate([x, np.minimum(sub @ x, 1.0)])
    options = SolverOptions(name="highs", time_limit_s=max(0.1, seconds), threads=1)
    outcome = solve_milp(milp, options, start=values)
    if outcome.values is None:
        return None, False
    return outcome.values[:n_x] > 0.5, outcome.status == "optimal"


def _window(
    csr: sp.csr_matrix, csc: sp.csc_matrix, is_open: np.ndarray, start: np.ndarray, size: int,
    rng: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    """The ``size`` open sites nearest the columns ``start`` in the reach graph: the open ones
    among ``start``, then ring after ring of columns sharing a row with the ring before, and
    within the last ring those with the most rows in the rings' reach first (ties at random)."""
    start = np.unique(np.asarray(start, dtype=np.int64))
    window = start[is_open[start]][:size].tolist()
    seen = np.zeros(csr.shape[1], dtype=bool)
    seen[start] = True
    ring = start
    while len(window) < size and len(ring):
        rows = np.unique(csc[:, ring].indices)
        ring = np.unique(csr[rows].indices)
        ring = ring[~seen[ring]]
        seen[ring] = True
        near = ring[is_open[ring]]
        if len(near) > size - len(window):
            inside = np.zeros(csr.shape[0])
            inside[rows] = 1.0
            score = csc[:, near].T @ inside + 0.5 * rng.random(len(near))
            near = near[np.argsort(-score)]
        window.extend(near[: size - len(window)].tolist())
    return np.array(window, dtype=np.int64)


def _window_start(
    csr: sp.csr_matrix,
    weight: np.ndarray,
    hits: np.ndarray,
    coverable: np.ndarray,
    opened: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """The columns a window is drawn around: those reaching an uncovered row drawn by weight
    (in a share ``_LNS_UNCOVERED`` of the steps, when a row is uncovered), else an open site
    drawn at random."""
    uncovered = np.flatnonzero((hits == 0) & coverable)
    if len(uncovered) and rng.random() < _LNS_UNCOVERED:  # around an uncovered row
        row = rng.choice(uncovered, p=weight[uncovered] / weight[uncovered].sum())
        return csr.indices[csr.indptr[row] : csr.indptr[row + 1]]
    return np.array([rng.choice(opened)])  # around an open site


def _window_problem(
    csr: sp.csr_matrix, csc: sp.csc_matrix, hits: np.ndarray, freed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix, np.ndarray]:
    """The covering problem of a window: each row's hits once ``freed`` close, the columns that
    may open (those reaching a row only freed sites cover or an uncovered row next to them),
    and the matrix of those columns on the rows they reach that no site kept open covers, with
    these rows."""
    kept = hits - np.asarray(csc[:, freed].sum(axis=1)).ravel()
    freed_rows = np.unique(csc[:, freed].indices)
    next_rows = np.unique(csc[:, np.unique(csr[freed_rows].indices)].indices)
    target = np.union1d(freed_rows[kept[freed_rows] == 0], next_rows[hits[next_rows] == 0])
    columns = np.unique(csr[target].indices)
    sub = csc[:, columns].tocsr()
    rows = np.flatnonzero((np.diff(sub.indptr) > 0) & (kept == 0))
    sub = sub[rows]
    return kept, columns, sub, rows


def _resized(size: int, optimal: bool, took: float, n_open: int) -> int:
    """The next window's size: one site more after a step solved in under a quarter of its time
    limit (at most ``n_open``), one less after a step that hit it (not below
    ``_LNS_MIN_SITES``)."""
    if optimal and took < _LNS_LIMIT_S / 4:
        size = min(size + 1, n_open)
    elif not optimal:
        size = max(min(_LNS_MIN_SITES, size), size - 1)
    return size


def _covers(sub: sp.csr_matrix, weight: np.ndarray, x: np.ndarray) -> float:
    """The weight of the rows of ``sub`` that the boolean plan ``x`` covers."""
    return float(weight @ ((sub @ x.astype(np.float64)) > 0))


def window_search(
    reach: sp.spmatrix,
    weight: np.ndarray,
    count: int,
    initial: np.ndarray,
    *,
    seconds: float,
    steps: int | None = None,
    seed: int = 0,
    stop_at: float | None = None,
    stop: Any = None,
    size: int = _LNS_SITES,
) -> SearchResult:
    """Improve the plan ``initial`` window by window, each window solved exactly (a large
    neighbourhood search).

    A step frees the open sites nearest, in the reach graph (``size`` of them, see
    :func:`_window`), to an open site drawn at random or, in a share ``_LNS_UNCOVERED`` of the
    steps, to an uncovered row drawn in proportion to its weight (any better plan must cover
    some uncovered row). It then solves exactly, by HiGHS from the freed sites,
    which as many columns to open instead: on the rows that the sites kept open leave
    uncovered, with the columns reaching a row that only freed sites cover or an uncovered row
    next to them. So a step never covers less, and it can make the moves single swaps cannot:
    several sites moved at once. A different plan that covers as much is taken too (a
    sideways move). The window grows by one site after a step solved in under a quarter of
    its time limit (``_LNS_LIMIT_S``) and shrinks by one after a step that hit it (not below
    ``_LNS_MIN_SITES``). Stops after ``steps`` steps, at ``seconds``, when ``stop`` is set or
    when a plan covers ``stop_at`` or every coverable row.
    """
    began = time.perf_counter()
    csr = sp.csr_matrix(reach, dtype=np.float64)
    csc = csr.tocsc()
    weight = np.asarray(weight, dtype=np.float64)
    n_cand = csr.shape[1]
    opened0 = np.unique(np.asarray(initial, dtype=np.int64))
    is_open = np.zeros(n_cand, dtype=bool)
    is_open[opened0] = True
    hits = np.asarray(csc[:, opened0].sum(axis=1)).ravel()  # open sites reaching each row
    coverable = (np.diff(csr.indptr) > 0) & (weight > 0)
    total = float(weight[coverable].sum())
    enough = total if stop_at is None else min(total, stop_at)
    tolerance = 1e-9 * max(1.0, total)
    value, found = float(weight[hits > 0].sum()), 0.0
    rng = np.random.default_rng(seed)
    size = max(1, min(int(size), len(opened0)))
    done = 0
    while (
        len(opened0) and len(opened0) < n_cand
        and (steps is None or done < steps)
        and time.perf_counter() - began < seconds
        and value < enough - tolerance
        and not (stop is not None and stop.is_set())
    ):  # fmt: skip
        done += 1
        opened = np.flatnonzero(is_open)
        start = _window_start(csr, weight, hits, coverable, opened, rng)
        freed = _window(csr, csc, is_open, start, size, rng)
        if len(freed) == 0:
            continue
        kept, columns, sub, rows = _window_problem(csr, csc, hits, freed)
        start_x = is_open[columns]
        limit = min(_LNS_LIMIT_S, seconds - (time.perf_counter() - began))
        solved_at = time.perf_counter()
        chosen, optimal = _solve_covering(sub, weight[rows], len(freed), start_x, limit)
        took = time.perf_counter() - solved_at
        size = _resized(size, optimal, took, len(opened))
        if chosen is None or np.array_equal(chosen, start_x):
            continue
        before = _covers(sub, weight[rows], start_x)
        after = _covers(sub, weight[rows], chosen)
        if after < before - tolerance:
            continue  # cannot happen from a MIP start, unless the solver returned worse
        is_open[freed] = False
        is_open[columns[chosen]] = True
        hits = kept + np.asarray(csc[:, columns[chosen]].sum(axis=1)).ravel()
        if after > before + tolerance:
            value, found = float(weight[hits > 0].sum()), time.perf_counter() - began
    if stop is not None and value >= enough - tolerance:
        stop.set()
    return SearchResult(
        np.flatnonzero(is_open), value, done, time.perf_counter() - began, found, seed=seed
    )


def _segments(
    problem: tuple,
    options: dict[str, Any],
    first: int,
    stop: Any,
    began: float,
    *,
    ends: list[float],
    step: int,
    offset: int = 0,
) -> Any:
    """Independent searches one after another, yielding each result: the ``k``-th has seed
    ``seed + offset + first + k·step`` and ends ``ends[k]`` seconds after ``began`` (the
    ``time.time`` clock); only the very first starts from ``initial``."""
    for k, end in enumerate(ends):
        if stop.is_set():
            return
        if time.time() - began >= end:
            continue  # a merge ran past this one's end
        mine = {
            **options,
            "seconds": end,
            "seed": options["seed"] + offset + first + k * step,
            "initial": options["initial"] if first == 0 and k == 0 else None,
        }
        yield _search(*problem, **mine, stop=stop, began=began)


def _segment_worker(
    results: Any,
    stop: Any,
    index: int,
    problem: tuple,
    options: dict,
    began: float,
    plan: dict,
    long_s: float,
) -> None:
    """A worker process's searches, each result sent to ``results``, then ``None`` (done).
    Workers 1 … ``plan["offset"]`` (a hybrid) each run one long search from ``initial`` until
    ``long_s``, with seed ``seed + index − 1`` (the first seeds), and send its best plan so
    far, as ``(covered, opened, found_s)``, at the segments' ends; the others run segments."""
    try:
        if index <= plan["offset"]:
            mine = {**options, "seconds": long_s, "seed": options["seed"] + index - 1}
            result = _search(
                *problem, **mine, stop=stop, began=began, report_at=plan["ends"],
                report=lambda *best: results.put((index, best)),
            )  # fmt: skip
            results.put((index, result))
            return
        first = index - plan["offset"]
        for result in _segments(problem, options, first, stop, began, **plan):
            results.put((index, result))
    finally:  # the caller waits for this even when a search failed
        results.put((index, None))


def _schedule(
    seconds: float, segment_s: float | None, workers: int, tuning: Tuning
) -> tuple[float, float, dict[str, Any]]:
    """A segmented search's schedule: the segments' length, when the last merge ends (seconds
    after the start) and the plan of :func:`_segments` (the segments' ends, the seed step and
    how many long searches run instead of segments)."""
    if segment_s is None:
        segment_s = max(tuning.segment_min_s, seconds / tuning.segments)
    windows_s = tuning.lns_share * seconds  # the window search's time at the end
    merged_by = seconds - windows_s  # the last merge ends (if not already done)
    until = merged_by - min(segment_s, tuning.merge_share * seconds)  # the segments end
    segments = max(1, round(until / segment_s))
    lengths = tuning.segment_growth ** np.arange(segments)
    ends = (np.cumsum(lengths) * (until / lengths.sum())).tolist()
    long = _LONG_SEARCHES if workers > _LONG_SEARCHES else 0
    plan: dict[str, Any] = dict(ends=ends, step=workers - long, offset=long)  # see _segments
    return segment_s, merged_by, plan


def _take_sent(results: Any, waiting: set[int], take: Any) -> None:
    """Hand ``take`` what the workers in ``waiting`` sent meanwhile, without waiting for more;
    workers done are removed from ``waiting``."""
    while waiting:  # what the workers sent meanwhile, without waiting for more
        try:
            index, sent = results.get_nowait()
        except queue.Empty:
            break
        if sent is None:
            waiting.discard(index)
        else:
            take(index, sent)


class _Merged:
    """The plans of a segmented search (:func:`_segmented`): every plan to merge, the best one
    (covered, opened, found_s, seed) and the merges and window steps that improved on it."""

    def __init__(
        self,
        problem: tuple,
        options: dict[str, Any],
        stop: Any,
        began: float,
        *,
        enough: float,
        tolerance: float,
    ) -> None:
        self.problem, self.options, self.stop, self.began = problem, options, stop, began
        self.enough, self.tolerance = enough, tolerance
        self.found: list[SearchResult] = []  # whole searches: segments and the long ones
        self.plans: list[np.ndarray] = []  # every plan to merge: theirs and the long ones' reports
        self.sources: set[int] = set()
        self.best: tuple[float, np.ndarray, float, int] | None = None
        self.merged_columns, self.merges, self.window_steps = 0, 0, 0

    def offer(self, covered: float, opened: np.ndarray, found_s: float, seed: int) -> None:
        self.plans.append(opened)
        if self.best is None or covered > self.best[0] + self.tolerance:
            self.best = (covered, opened, found_s, seed)

    def take(self, index: int, sent: Any) -> None:
        """A search's result, or a long search's best plan so far, sent by worker ``index``."""
        self.sources.add(index)
        if isinstance(sent, SearchResult):
            self.found.append(sent)
            self.offer(sent.covered, sent.opened, sent.found_s, sent.seed)
        else:  # a long search's best plan so far
            value, opened, found_s = sent
            self.offer(value, opened, found_s, self.options["seed"])

    def merge(self, limit: float) -> None:
        """Merge the plans (:func:`merge_plans`, at most ``limit`` seconds) when they have
        columns no merge had, polish the result by swaps and keep it if it covers more."""
        assert self.best is not None
        columns = len(np.unique(np.concatenate(self.plans)))
        if columns <= self.merged_columns or limit <= 0 or self.stop.is_set():
            return
        self.merged_columns = columns
        matrix, weight, count = self.problem
        opened = merge_plans(matrix, weight, count, self.plans, seconds=limit, start=self.best[1])
        if opened is None:
            return
        polished = _search(  # swaps with columns outside the union may still improve it
            *self.problem,
            **{**self.options, "seconds": max(1.0, limit), "rounds": 0, "initial": opened},
        )
        if polished.covered > self.best[0] + self.tolerance:
            self.merges += 1
            self.best = (polished.covered, polished.opened, time.perf_counter() - self.began, -1)
            if self.best[0] >= self.enough - self.tolerance:
                self.stop.set()

    def window(self, limit: float) -> None:
        """The window search (:func:`window_search`, at most ``limit`` seconds) from the best
        plan, kept if it covers more."""
        assert self.best is not None
        if limit <= 0 or self.stop.is_set():
            return
        started = time.perf_counter() - self.began
        matrix, weight, count = self.problem
        improved = window_search(
            matrix, weight, count, self.best[1], seconds=limit, seed=self.options["seed"],
            stop_at=self.options["stop_at"], stop=self.stop,
        )  # fmt: skip
        self.window_steps = improved.rounds
        if improved.covered > self.best[0] + self.tolerance:  # the seed of the plan it started from
            self.best = (
                improved.covered, improved.opened, started + improved.found_s, self.best[3]
            )  # fmt: skip

    def result(self) -> SearchResult:
        """The best plan, with the rounds and restarts of every search and the counts."""
        assert self.best is not None
        covered, opened, found_s, seed = self.best
        return SearchResult(
            opened,
            covered,
            rounds=sum(r.rounds for r in self.found),
            seconds=time.perf_counter() - self.began,
            found_s=found_s,
            restarts=sum(r.restarts for r in self.found),
            seed=seed,
            workers=len(self.sources),
            segments=len(self.found),
            merges=self.merges,
            window_steps=self.window_steps,
        )


def _segmented(
    reach: sp.spmatrix,
    weight: np.ndarray,
    count: int,
    workers: int,
    options: dict[str, Any],
    segment_s: float | None,
) -> SearchResult:
    """A timed search as independent searches of ``segment_s`` seconds, whose plans are merged
    (:func:`merge_plans`) whenever they bring new columns; the last merge gets the time kept
    back after them, and :func:`window_search` the last ``Tuning.lns_share`` of the time, from
    the best plan. On several cores, one of them runs a single long search over the whole time
    instead (a hybrid), whose best plan joins the merges at the segments' ends and is compared
    at the end. See the module docstring.
    """
    began_wall, began = time.time(), time.perf_counter()
    seconds = float(options["seconds"])
    segment_s, merged_by, plan = _schedule(seconds, segment_s, workers, options["tuning"])
    long = plan["offset"]
    matrix = sp.csr_matrix(reach)
    weight = np.asarray(weight, dtype=np.float64)
    problem = (matrix, weight, count)
    total = float(weight[np.diff(matrix.indptr) > 0].sum())
    stop_at = options["stop_at"]
    enough = total if stop_at is None else min(total, stop_at)
    tolerance = 1e-9 * max(1.0, total)
    if workers > 1:
        stop, results, processes = _start_workers(
            workers, _segment_worker, (problem, options, began_wall, plan, seconds)
        )
    else:
        stop, results, processes = threading.Event(), None, []
    merged = _Merged(problem, options, stop, began, enough=enough, tolerance=tolerance)
    waiting = set(range(1, workers))
    try:
        for result in _segments(problem, options, 0, stop, began_wall, **plan):
            merged.take(0, result)
            _take_sent(results, waiting, merged.take)
            merged.merge(min(segment_s, merged_by - (time.perf_counter() - began)))
        segmenting = {index for index in waiting if index > long}  # the long ones run on
        _await_workers(results, processes, waiting, merged.take, awaited=segmenting)
        merged.merge(merged_by - (time.perf_counter() - began))
        merged.window(seconds - (time.perf_counter() - began))
        _await_workers(results, processes, waiting, merged.take)
    finally:
        _stop_workers(stop, processes)
    return merged.result()


def plain_counts(reduced: ReducedProblem) -> list[int] | None:
    """Per type the number of sites to open when the model is separable plain covering, else None.

    Plain: maximal covering, every type bounded only by its count (no budget, tier counts,
    region rows, bed minimum or linked tiers), so each type can be searched on its own and
    opening more never covers less (the upper bound, or every candidate, is used).
    """
    problem = reduced.problem
    if problem.minimize is not None or problem.bed_types or problem.budget is not None:
        return None
    counts = []
    for rt in reduced.types:
        tp = rt.source
        if (
            tp.tier_counts
            or any(v > 0 for v in tp.region_min_sites.values())
            or tp.region_min_coverage
            or tp.min_beds > 0
            or len(linked_positions(rt))
        ):
            return None
        n = len(rt.candidates)
        upper = n if tp.count.upper is None else min(tp.count.upper, n)
        if upper < tp.count.lower:
            return None
        counts.append(upper)
    return counts


@dataclass(frozen=True)
class MipStart:
    """MILP column values of a search plan, its objective and how the search went."""

    values: np.ndarray
    objective: float
    rounds: int  # perturbation rounds, summed over the types
    found_s: float  # seconds into the search when the last type's plan was first reached


def mip_start(
    reduced: ReducedProblem,
    milp: Milp,
    *,
    seconds: float,
    rounds: int | None = None,
    seed: int = 0,
    workers: int = 1,
) -> MipStart | None:
    """MILP column values of a swap-search plan (and its objective), or None when not plain.

    The time budget is shared between the types in proportion to their nonzeros; ``rounds=0``
    stops at the first local optimum (greedy, then improving swaps); ``workers`` searches run
    side by side (see :func:`swap_search`).
    """
    began = time.perf_counter()
    counts = plain_counts(reduced)
    if counts is None or milp.n_cols == 0:
        return None
    values = np.zeros(milp.n_cols)
    total_nnz = max(1, sum(int(rt.reach.nnz) for rt in reduced.types))
    done, found = 0, 0.0
    for rt, count, (x0, y0, _) in zip(reduced.types, counts, column_layout(reduced), strict=True):
        n_x, n_y = len(rt.candidates), len(rt.row_weight)
        if n_y == 0 or count >= n_x:
            values[x0 : x0 + min(count, n_x)] = 1.0
            opened = np.arange(min(count, n_x))
        else:
            share = seconds * rt.reach.nnz / total_nnz
            type_began = time.perf_counter() - began
            result = swap_search(
                rt.reach,
                rt.row_weight,
                count,
                seconds=share,
                rounds=rounds,
                seed=seed,
                workers=workers,
            )
            opened, done = result.opened, done + result.rounds
            found = type_began + result.found_s
            values[x0 + opened] = 1.0
        if n_y:
            hit = np.asarray(sp.csc_matrix(rt.reach)[:, opened].sum(axis=1)).ravel()
            values[y0 : y0 + n_y] = np.minimum(hit, 1.0)
    return MipStart(
        values=values,
        objective=float(milp.objective @ values) + milp.constant,
        rounds=done,
        found_s=found,
    )
