"""The course's exercises: :func:`check` and, one module per lesson, the experiments its check cells run.

Introduced in notebook 01_diffusion_basics. Every notebook ends with exercises that ask for a prediction
(``prediction_1 = None``, then the answer) and a check cell that runs the experiment which measures the truth,
``check(1, prediction_1, lambda: exercises.some_experiment(...))``. Each experiment is a function of its
lesson's module (:mod:`helpers.exercises.diffusion_basics`, :mod:`~helpers.exercises.slerp`, ...) with explicit
arguments; it returns ``(truth, explanation)``, the explanation being the measured sentence the check prints.
The worked solutions are in ``notebooks/solutions/``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["check"]

#: How close a float prediction must be to a float truth (relative): rounding, not a different answer.
REL_TOL = 1e-6


def _is_bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_))


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not _is_bool(x)


def _same(prediction: Any, truth: Any) -> bool:
    """Equality, with floats compared up to :data:`REL_TOL` (``0.001`` is ``1e-3``); ``True`` is not ``1``."""
    if _is_number(prediction) and _is_number(truth):
        if isinstance(prediction, numbers.Integral) and isinstance(truth, numbers.Integral):
            return int(prediction) == int(truth)
        return math.isclose(float(prediction), float(truth), rel_tol=REL_TOL)
    if _is_bool(prediction) or _is_bool(truth):
        return _is_bool(prediction) and _is_bool(truth) and bool(prediction) == bool(truth)
    return bool(prediction == truth)


def check(number: int, prediction: Any, experiment: Callable[[], tuple[Any, str]]) -> bool | None:
    """Compare ``prediction`` with what ``experiment`` measures, and say so in one printed line.

    With ``prediction`` still ``None`` it prints ``exercise N: set prediction_N first, then run this cell again``
    and returns ``None`` without calling ``experiment`` (nothing is rendered or trained). Otherwise it calls
    ``experiment()``, which returns ``(truth, explanation)``, prints ``exercise N: right — <explanation>`` or
    ``exercise N: not quite — <explanation>`` and returns whether the prediction was right. Floats are compared
    up to rounding (``math.isclose``, relative tolerance :data:`REL_TOL`), anything else by equality.

    Introduced in notebook 01_diffusion_basics.
    """
    if isinstance(number, bool) or not isinstance(number, numbers.Integral) or number < 1:
        raise ValueError(f"number must be the exercise's number (1, 2, ...), got {number!r}")
    if not callable(experiment):
        raise TypeError(f"experiment must be a function of no arguments (e.g. a lambda), got "
                        f"{type(experiment).__name__}")
    if prediction is None:
        print(f"exercise {number}: set prediction_{number} first, then run this cell again")
        return None
    result = experiment()
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str)):
        raise TypeError(f"exercise {number}: the experiment must return (truth, explanation), got {result!r:.80}")
    truth, explanation = result
    right = _same(prediction, truth)
    print(f"exercise {number}: {'right' if right else 'not quite'} — {explanation}")
    return right
