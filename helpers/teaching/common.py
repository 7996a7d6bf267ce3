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


def cosine_schedule(opt, steps: int, warmup: float = 0.05):
    """diffusers' ``get_cosine_schedule_with_warmup`` with a warm-up of ``warmup`` of the ``steps`` (at least
    one step): the learning-rate schedule of the unCLIP decoder, prior and super-res trainings."""
    from diffusers.optimization import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(opt, max(1, int(warmup * steps)), steps)


class TeachingWeightsMissingError(FileNotFoundError):
    """The shipped weights of a teaching model are not where the package expects them."""


__all__ = ["RETIRED_MODELS", "TEACHING_MODELS", "WEIGHTS_DIR", "TeachingWeightsMissingError", "cosine_schedule"]
