"""The one gate for numbers and keyword arguments at the public entries (a leaf module: stdlib only).

Every public function that takes a guidance scale, an eta, a step count, a radius, a pad or a size checks it here,
before any work, so that a non-finite or absurd value is one clear error that names the argument, the range and
the value, instead of black frames, NaN tensors or a deep traceback. NumPy scalars count as numbers (NumPy
registers them with :mod:`numbers`); ``bool`` does not.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any


def _type_name(value: Any) -> str:
    return type(value).__name__


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, hint: str = "") -> float:
    """``value`` as a float if it is a finite real number in [low, high] (``(low, high]`` with ``low_open``).

    Raises ``ValueError`` naming ``name``, the range and the value otherwise; ``hint`` is appended to it.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        x = float(value)
        ok = (low is None or (x > low if low_open else x >= low)) and (high is None or x <= high)
    if not ok:
        raise ValueError(f"{name} must be {_range_text(low, high, low_open)}, got {value!r}"
                         f" ({_type_name(value)}){'; ' + hint if hint else ''}")
    return float(value)


def check_int(name: str, value: Any, *, low: int, high: int | None = None, hint: str = "") -> int:
    """``value`` as an int if it is a whole number (not a bool, not a float) in [low, high]; else ``ValueError``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        ok = int(value) >= low and (high is None or int(value) <= high)
    if not ok:
        upto = f" to {high}" if high is not None else " or more"
        raise ValueError(f"{name} must be a whole number from {low}{upto}, got {value!r} ({_type_name(value)})"
                         f"{'; ' + hint if hint else ''}")
    return int(value)


def _range_text(low: float | None, high: float | None, low_open: bool) -> str:
    if low is None and high is None:
        return "a finite number"
    if high is None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"a finite number <= {high:g}"
    if low_open:
        return f"a finite number above {low:g} and at most {high:g}"
    return f"a finite number from {low:g} to {high:g}"


def check_prompts(prompts: Any, what: str = "prompts") -> list[str]:
    """One prompt or a non-empty list of them, as a list; else ``TypeError`` / ``ValueError`` naming ``what``."""
    if isinstance(prompts, str):
        return [prompts]
    if not isinstance(prompts, Sequence) or not all(isinstance(p, str) for p in prompts):
        raise TypeError(f"{what} must be a string or a list of strings, got {prompts!r}")
    if len(prompts) == 0:
        raise ValueError(f"{what} is empty: give at least one prompt")
    return list(prompts)


def check_kwargs(where: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Refuse keyword arguments that ``where`` does not take (with a did-you-mean), instead of ignoring a typo."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{where} takes no argument {key!r}{hint}; it would be ignored. "
                            f"Its arguments: {', '.join(allowed) or 'none'}")


#: The largest output side a walk asks of a model, as a multiple of its native side: beyond it a model draws
#: tiled garbage, and a 32 px teaching model asked for 2048 px runs for minutes without a frame.
MAX_SIZE_FACTOR = 4


def check_side(name: str, value: Any, *, native: int, multiple: int = 8) -> int:
    """An image side (height, width or size) as an int: a positive multiple of ``multiple``, at most
    ``MAX_SIZE_FACTOR`` times the model's ``native`` side; else one ``ValueError`` saying what fits."""
    high = MAX_SIZE_FACTOR * native
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 < int(value) <= high \
        and int(value) % multiple == 0
    if not ok:
        raise ValueError(f"{name} must be a positive multiple of {multiple} up to {high} ({MAX_SIZE_FACTOR}x this "
                         f"model's native {native} px), got {value!r}")
    return int(value)


#: The most denoising steps any entry takes (walk files cap ``steps`` here too): schedulers train on 1000 steps.
MAX_STEPS = 1000
#: The largest guidance scale any entry takes (walk files cap ``guidance`` here too): far past it frames go black.
MAX_GUIDANCE = 100.0
#: The largest image side an entry without a model's native size takes (walk files cap ``size`` here too).
MAX_SIDE = 4096


def check_steps(name: str, value: Any, *, low: int = 1, hint: str = "") -> int:
    """A step count: a whole number from ``low`` to :data:`MAX_STEPS`; else one ``ValueError``."""
    return check_int(name, value, low=low, high=MAX_STEPS, hint=hint)


def check_guidance(name: str, value: Any) -> float:
    """A classifier-free guidance scale: finite, from 0 to :data:`MAX_GUIDANCE`; else one ``ValueError``."""
    return check_real(name, value, low=0.0, high=MAX_GUIDANCE, hint="1 = no guidance, 3 to 10 is usual")


def check_eta(name: str, value: Any) -> float:
    """DDIM's eta: finite, from 0 (deterministic) to 1 (DDPM-like); else one ``ValueError``."""
    return check_real(name, value, low=0.0, high=1.0, hint="0 = deterministic DDIM, 1 = DDPM-like")
