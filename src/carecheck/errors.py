"""The exception family: every error carecheck raises on purpose."""

from __future__ import annotations


class CarecheckError(Exception):
    """Base class of every error carecheck raises on purpose."""

    exit_code = 1


class ScenarioError(CarecheckError, ValueError):
    """The scenario file is malformed; ``problems`` lists every problem found."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DataError(CarecheckError, ValueError):
    """A geodata layer is unreadable or breaks a rule (ids, weights, CRS, columns)."""

    exit_code = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class InfeasibleError(CarecheckError):
    """No plan satisfies the scenario's constraints; ``diagnosis`` says what to relax."""

    exit_code = 3

    def __init__(self, message: str, diagnosis: list[str]) -> None:
        self.diagnosis = list(diagnosis)
        super().__init__("\n".join([message, *("- " + line for line in self.diagnosis)]))


class NoSolutionError(CarecheckError):
    """The solver stopped (time limit) before it found any feasible plan."""

    exit_code = 4


class VerificationError(CarecheckError):
    """The independent check disagrees with the solution; ``problems`` lists how."""

    exit_code = 5

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("verification failed:\n" + "\n".join("- " + p for p in self.problems))
