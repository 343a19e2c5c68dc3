"""carecheck: site elderly-care facilities so that the most older people are within reach.

The names below are loaded on first use, so ``import carecheck`` (and ``carecheck --help``)
stays light; ``from carecheck import run_scenario`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from carecheck.errors import (
    CarecheckError,
    DataError,
    InfeasibleError,
    NoSolutionError,
    ScenarioError,
    VerificationError,
)

if TYPE_CHECKING:  # pragma: no cover
    from carecheck.config import Scenario, load_scenario
    from carecheck.finished import verify_outputs
    from carecheck.pipeline import RunResult, run_scenario

_LAZY = {
    "Scenario": "carecheck.config",
    "load_scenario": "carecheck.config",
    "verify_outputs": "carecheck.finished",
    "RunResult": "carecheck.pipeline",
    "run_scenario": "carecheck.pipeline",
}

__all__ = [
    "CarecheckError",
    "DataError",
    "InfeasibleError",
    "NoSolutionError",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "VerificationError",
    "__version__",
    "load_scenario",
    "run_scenario",
    "verify_outputs",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'carecheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
