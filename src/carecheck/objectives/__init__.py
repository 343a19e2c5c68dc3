"""The objectives carecheck can optimise: one module each, named here.

``objective.kind`` in a scenario is a key of :data:`KINDS`; the module it names holds one
:class:`carecheck.objectives.base.Objective` as ``OBJECTIVE``: its scenario checks, its model,
its starting plan, how its plan is decoded, valued, bounded and checked, and its report lines.
Modules are imported only when their objective is used.

Adding an objective: write one module with an ``OBJECTIVE`` and add one line to :data:`KINDS`
(or call :func:`register` at run time, as a plug-in or a test would).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from carecheck.objectives.base import Objective

KINDS: dict[str, str] = {
    "max_coverage": "carecheck.objectives.max_coverage",
    "min_sites": "carecheck.objectives.min_sites",
    "capacitated": "carecheck.objectives.capacitated",
    "min_distance": "carecheck.objectives.min_distance",
}
_REGISTERED: dict[str, Objective] = {}


def kinds() -> tuple[str, ...]:
    """The allowed values of ``objective.kind``.

    Returns
    -------
    tuple of str
        The built-in kinds in the order of :data:`KINDS`, then those added by
        :func:`register`.
    """
    return (*KINDS, *(k for k in _REGISTERED if k not in KINDS))


def registered() -> tuple[str, ...]:
    """The kinds :func:`register` added or replaced in this process (a fresh interpreter, such
    as the workbook's second process in :mod:`carecheck.deliverables`, has none of them)."""
    return tuple(_REGISTERED)


def get(kind: str) -> Objective:
    """The objective named ``kind`` (its module is imported on first use).

    Parameters
    ----------
    kind
        A value of :func:`kinds`.

    Returns
    -------
    Objective
        The objective's one instance.

    Raises
    ------
    KeyError
        When no objective has that kind.
    """
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    if kind not in KINDS:
        raise KeyError(f"unknown objective {kind!r}; known: {', '.join(kinds())}")
    objective: Objective = importlib.import_module(KINDS[kind]).OBJECTIVE
    return objective


def register(objective: Objective) -> None:
    """Add (or replace) an objective under ``objective.kind``; scenarios may then name it.

    Parameters
    ----------
    objective
        An instance of a subclass of :class:`carecheck.objectives.base.Objective` with its
        ``kind`` set.
    """
    _REGISTERED[objective.kind] = objective


def unregister(kind: str) -> None:
    """Remove an objective added by :func:`register` (nothing happens for other kinds).

    Parameters
    ----------
    kind
        The kind it was registered under.
    """
    _REGISTERED.pop(kind, None)
