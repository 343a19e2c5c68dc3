"""Compiled inner loops of the swap search (optional: ``pip install carecheck[fast]``).

The swap search (``heuristic``) spends its time in steps that touch a few thousand array
entries each: applying a move (the bookkeeping of the rows the moved sites reach), scoring
every open slot's best swap, and the path-relinking walk (one move per step). In numpy a move
is some 25 small array calls, about half a millisecond of call overhead; written as loops and
compiled by numba it costs microseconds, and the search makes 7–9 times more rounds in the
same time (``benchmarks/swap_search.py``).

The functions below are plain Python over numpy arrays, the same arithmetic as the numpy
path in ``heuristic._Plan`` (which stays the reference and the fallback without numba).
:func:`compiled` returns them compiled with ``numba.njit`` (cached on disk), or None when
numba is not installed; ``PLAIN`` holds them uncompiled. Tests run numpy, plain and compiled
against a recount from scratch, and check that all three make the same moves.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

numba: Any
try:
    import numba
except ImportError:  # the plain Python loops stay usable (slowly), e.g. by tests
    numba = None


def _jit(function: Any) -> Any:
    """Compiled by numba on first call (and cached on disk), or as it is without numba."""
    if numba is None:
        return function
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # no writable cache folder (read-only install and home): no cache
        return numba.njit(nogil=True)(function)


@_jit
def _record_rows(
    close: np.ndarray,
    open_: np.ndarray,
    col_ptr: np.ndarray,
    col_idx: np.ndarray,
    hits: np.ndarray,
    id_sum: np.ndarray,
    mark: np.ndarray,
    buf_rows: np.ndarray,
    buf_hits: np.ndarray,
    buf_sum: np.ndarray,
) -> int:
    """Mark the rows the moved sites reach and note each one's hits and id sum before the move
    (in the buffers, each row once); returns how many rows."""
    n_close = len(close)
    n = 0
    for t in range(n_close + len(open_)):
        j = close[t] if t < n_close else open_[t - n_close]
        for q in range(col_ptr[j], col_ptr[j + 1]):
            i = col_idx[q]
            if not mark[i]:
                mark[i] = True
                buf_rows[n] = i
                buf_hits[n] = hits[i]
                buf_sum[n] = id_sum[i]
                n += 1
    return n


@_jit
def _count_move(
    close: np.ndarray,
    open_: np.ndarray,
    col_ptr: np.ndarray,
    col_idx: np.ndarray,
    hits: np.ndarray,
    id_sum: np.ndarray,
) -> None:
    """Update the hits and id sums of the rows the moved sites reach."""
    n_close = len(close)
    for t in range(n_close):
        k = close[t]
        for q in range(col_ptr[k], col_ptr[k + 1]):
            hits[col_idx[q]] -= 1
            id_sum[col_idx[q]] -= k
    for t in range(len(open_)):
        j = open_[t]
        for q in range(col_ptr[j], col_ptr[j + 1]):
            hits[col_idx[q]] += 1
            id_sum[col_idx[q]] += j


@_jit
def _take_out_old_terms(
    n: int,
    row_ptr: np.ndarray,
    row_idx: np.ndarray,
    weight: np.ndarray,
    hits: np.ndarray,
    id_sum: np.ndarray,
    slot: np.ndarray,
    gain: np.ndarray,
    alone: np.ndarray,
    both_t: np.ndarray,
    pairs: bool,
    mark: np.ndarray,
    buf_rows: np.ndarray,
    buf_hits: np.ndarray,
    buf_sum: np.ndarray,
) -> float:
    """Correct ``gain`` and ``alone`` of the ``n`` noted rows and take their old terms out of
    ``both`` (while the slots are still the old ones), clearing their marks; returns the
    coverage change."""
    delta = 0.0
    for t in range(n):  # take out the old terms (while the slots are still the old ones)
        i = buf_rows[t]
        mark[i] = False
        old_h, old_s, new_h, new_s = buf_hits[t], buf_sum[t], hits[i], id_sum[i]
        w = weight[i]
        if old_h == 0 and new_h > 0:
            delta += w
        elif old_h > 0 and new_h == 0:
            delta -= w
        if (old_h > 1 and new_h > 1) or (old_h == new_h and old_s == new_s):
            continue
        d_gain = w * ((1.0 if new_h == 0 else 0.0) - (1.0 if old_h == 0 else 0.0))
        d_alone = w * ((1.0 if new_h == 1 else 0.0) - (1.0 if old_h == 1 else 0.0))
        owner = slot[old_s] if (pairs and old_h == 1) else -1
        if d_gain != 0.0 or d_alone != 0.0:
            for q in range(row_ptr[i], row_ptr[i + 1]):
                c = row_idx[q]
                gain[c] += d_gain
                alone[c] += d_alone
        if owner >= 0:
            for q in range(row_ptr[i], row_ptr[i + 1]):
                both_t[row_idx[q], owner] -= w
    return delta


@_jit
def _move_slots(close: np.ndarray, open_: np.ndarray, slot: np.ndarray, site: np.ndarray) -> None:
    """Free the closed sites' slots and put the opened sites in the lowest free slots."""
    n_close = len(close)
    for t in range(n_close):
        k = close[t]
        site[slot[k]] = -1
        slot[k] = -1
    s = 0
    for t in range(len(open_)):  # lowest free slots first, as the numpy path does
        while site[s] >= 0:
            s += 1
        site[s] = open_[t]
        slot[open_[t]] = s


@_jit
def _put_in_new_terms(
    n: int,
    row_ptr: np.ndarray,
    row_idx: np.ndarray,
    weight: np.ndarray,
    hits: np.ndarray,
    id_sum: np.ndarray,
    slot: np.ndarray,
    both_t: np.ndarray,
    buf_rows: np.ndarray,
    buf_hits: np.ndarray,
    buf_sum: np.ndarray,
) -> None:
    """Add to ``both`` the terms of the noted rows that now have one open site (new slots)."""
    for t in range(n):  # put in the new terms of rows that now have one open site
        i = buf_rows[t]
        old_h, old_s, new_h, new_s = buf_hits[t], buf_sum[t], hits[i], id_sum[i]
        if new_h != 1 or (old_h == 1 and old_s == new_s):
            continue
        owner = slot[new_s]
        w = weight[i]
        for q in range(row_ptr[i], row_ptr[i + 1]):
            both_t[row_idx[q], owner] += w


@_jit
def apply_move(
    close: np.ndarray,
    open_: np.ndarray,
    col_ptr: np.ndarray,
    col_idx: np.ndarray,
    row_ptr: np.ndarray,
    row_idx: np.ndarray,
    weight: np.ndarray,
    hits: np.ndarray,
    id_sum: np.ndarray,
    slot: np.ndarray,
    site: np.ndarray,
    gain: np.ndarray,
    alone: np.ndarray,
    both_t: np.ndarray,
    pairs: bool,
    mark: np.ndarray,
    buf_rows: np.ndarray,
    buf_hits: np.ndarray,
    buf_sum: np.ndarray,
) -> float:
    """Close ``close``, open ``open_`` and correct the bookkeeping; returns the coverage change.

    ``mark`` (bool, one per row, all False on entry and on return) and the three buffers (at
    least as long as the rows the moved sites reach, counted with repeats) are scratch space.
    """
    n = _record_rows(
        close, open_, col_ptr, col_idx, hits, id_sum, mark, buf_rows, buf_hits, buf_sum
    )
    _count_move(close, open_, col_ptr, col_idx, hits, id_sum)
    delta = _take_out_old_terms(
        n, row_ptr, row_idx, weight, hits, id_sum, slot, gain, alone, both_t, pairs, mark,
        buf_rows, buf_hits, buf_sum,
    )  # fmt: skip
    _move_slots(close, open_, slot, site)
    if pairs:
        _put_in_new_terms(
            n, row_ptr, row_idx, weight, hits, id_sum, slot, both_t, buf_rows, buf_hits, buf_sum
        )
    return delta


@_jit
def _best_changes(
    site: np.ndarray,
    slot: np.ndarray,
    gain: np.ndarray,
    alone: np.ndarray,
    both_t: np.ndarray,
    tolerance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each slot's best swap: its change (``-inf`` when none) and the candidate it opens (-1)."""
    n_cand = len(gain)
    count = len(site)
    change = np.full(count, -np.inf)
    column = np.full(count, -1, dtype=np.int64)
    # a swap improves only if it beats what the open site alone covers; and both[s, j] <=
    # alone[j] (a closed j's alone is its both column summed over the slots), so a j with
    # gain[j] + alone[j] at or below every slot's floor cannot improve any slot
    floor = np.empty(count)
    for s in range(count):
        floor[s] = alone[site[s]] + tolerance
    need = floor.min()
    for j in range(n_cand):
        g = gain[j]
        if g <= tolerance or slot[j] >= 0 or g + alone[j] <= need:
            continue
        row = both_t[j]
        for s in range(count):
            v = row[s] + g
            if v > change[s]:
                change[s] = v
                column[s] = j
    for s in range(count):
        change[s] -= alone[site[s]]
    return change, column


@_jit
def _reaches_used(k: int, col_ptr: np.ndarray, col_idx: np.ndarray, used: np.ndarray) -> bool:
    """Whether site ``k`` reaches a row marked ``used``."""
    for q in range(col_ptr[k], col_ptr[k + 1]):  # noqa: SIM110 (a loop numba compiles)
        if used[col_idx[q]]:
            return True
    return False


@_jit
def _keep_disjoint(
    site: np.ndarray,
    change: np.ndarray,
    column: np.ndarray,
    tolerance: float,
    col_ptr: np.ndarray,
    col_idx: np.ndarray,
    used: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The improving swaps best first, each unless a row one of its two sites reaches was
    reached by a swap kept before it (marking their rows ``used``): close, open, change."""
    count = len(site)
    order = np.argsort(-change, kind="mergesort")
    leave = np.empty(count, dtype=np.int64)
    enter = np.empty(count, dtype=np.int64)
    score = np.empty(count)
    kept = 0
    for s in order:
        if not change[s] > tolerance:
            break
        k, j = site[s], column[s]
        if _reaches_used(k, col_ptr, col_idx, used) or _reaches_used(j, col_ptr, col_idx, used):
            continue
        for q in range(col_ptr[k], col_ptr[k + 1]):
            used[col_idx[q]] = True
        for q in range(col_ptr[j], col_ptr[j + 1]):
            used[col_idx[q]] = True
        leave[kept] = k
        enter[kept] = j
        score[kept] = change[s]
        kept += 1
    return leave[:kept], enter[:kept], score[:kept]


@_jit
def _release_rows(
    leave: np.ndarray, enter: np.ndarray, col_ptr: np.ndarray, col_idx: np.ndarray, used: np.ndarray
) -> None:
    """Unmark the rows the swaps' sites reach."""
    for t in range(len(leave)):
        for k in (leave[t], enter[t]):
            for q in range(col_ptr[k], col_ptr[k + 1]):
                used[col_idx[q]] = False


@_jit
def best_swaps(
    site: np.ndarray,
    slot: np.ndarray,
    gain: np.ndarray,
    alone: np.ndarray,
    both_t: np.ndarray,
    tolerance: float,
    col_ptr: np.ndarray,
    col_idx: np.ndarray,
    used: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Improving swaps (close, open, change) on disjoint rows, best first.

    Each slot's best swap: the closed candidate ``j`` with ``gain[j] > tolerance`` that
    maximises ``both[s, j] + gain[j]`` (``both_t`` is ``both`` stored candidates × slots),
    scored minus ``alone[site[s]]`` (the first such ``j`` on ties). Then, best first, a swap
    is kept unless a row one of its two sites reaches was reached by a swap kept before it.
    ``used`` (bool per row, all False) is scratch space and all False again on return.
    """
    change, column = _best_changes(site, slot, gain, alone, both_t, tolerance)
    leave, enter, score = _keep_disjoint(site, change, column, tolerance, col_ptr, col_idx, used)
    _release_rows(leave, enter, col_ptr, col_idx, used)
    return leave, enter, score


@_jit
def relink_walk(
    leave: np.ndarray,
    enter: np.ndarray,
    covered: float,
    col_ptr: np.ndarray,
    col_idx: np.ndarray,
    row_ptr: np.ndarray,
    row_idx: np.ndarray,
    weight: np.ndarray,
    hits: np.ndarray,
    id_sum: np.ndarray,
    slot: np.ndarray,
    site: np.ndarray,
    gain: np.ndarray,
    alone: np.ndarray,
    both_t: np.ndarray,
    pairs: bool,
    mark: np.ndarray,
    buf_rows: np.ndarray,
    buf_hits: np.ndarray,
    buf_sum: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Path relinking: swap the open sites ``leave`` for the closed ``enter`` one pair at a
    time, each step the pair that covers most (the first in ``leave`` × ``enter`` order on
    ties), and stop one swap short of the end. Returns each step's closed site, opened site
    and the coverage after it (``covered`` is the coverage before the walk)."""
    n_left, n_right = len(leave), len(enter)
    steps = max(n_left - 1, 0)
    closed = np.empty(steps, dtype=np.int64)
    opened = np.empty(steps, dtype=np.int64)
    value = np.empty(steps)
    left, right = leave.copy(), enter.copy()
    one_k = np.empty(1, dtype=np.int64)
    one_j = np.empty(1, dtype=np.int64)
    for t in range(steps):
        best, at_a, at_b = -np.inf, 0, 0
        for a in range(n_left):
            k = left[a]
            column = slot[k]
            for b in range(n_right):
                j = right[b]
                v = both_t[j, column] + gain[j] - alone[k]
                if v > best:
                    best, at_a, at_b = v, a, b
        one_k[0], one_j[0] = left[at_a], right[at_b]
        for a in range(at_a, n_left - 1):
            left[a] = left[a + 1]
        for b in range(at_b, n_right - 1):
            right[b] = right[b + 1]
        n_left -= 1
        n_right -= 1
        covered += apply_move(
            one_k, one_j, col_ptr, col_idx, row_ptr, row_idx, weight, hits, id_sum, slot,
            site, gain, alone, both_t, pairs, mark, buf_rows, buf_hits, buf_sum,
        )  # fmt: skip
        closed[t], opened[t], value[t] = one_k[0], one_j[0], covered
    return closed, opened, value


_NAMES = ("apply_move", "best_swaps", "relink_walk")
PLAIN = SimpleNamespace(
    **{name: getattr(globals()[name], "py_func", globals()[name]) for name in _NAMES}
)


def compiled() -> SimpleNamespace | None:
    """The kernels compiled by numba (each on its first call; cached on disk), None without
    numba."""
    if numba is None:
        return None
    return _COMPILED


_COMPILED = SimpleNamespace(**{name: globals()[name] for name in _NAMES})
