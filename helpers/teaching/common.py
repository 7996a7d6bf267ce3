"""What every teaching module shares: where the shipped weights live, the models' names, the missing-weights error.

A leaf module (it imports only the registry), so that the teaching modules and :mod:`helpers.teaching` itself
can all use it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from helpers.models import RETIRED as RETIRED_MODELS
from helpers.models import names

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The teaching models of the registry (:mod:`helpers.models`).
TEACHING_MODELS = tuple(names(backend="teaching"))


class TeachingWeightsMissingError(FileNotFoundError):
    """The shipped weights of a teaching model are not where the package expects them."""


__all__ = ["RETIRED_MODELS", "TEACHING_MODELS", "WEIGHTS_DIR", "TeachingWeightsMissingError"]
