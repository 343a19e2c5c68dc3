"""carecheck: site elderly-care facilities so that the most older people are within reach."""

from __future__ import annotations

__version__ = "0.1.0"

from carecheck.config import Scenario, load_scenario
from carecheck.errors import (
    CarecheckError,
    DataError,
    InfeasibleError,
    NoSolutionError,
    ScenarioError,
    VerificationError,
)
from carecheck.finished import verify_outputs
from carecheck.pipeline import RunResult, run_scenario

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
