"""What every teaching module shares: where the shipped weights live, the models' names, the missing-weights error,
the trainings' learning-rate schedule and the pinned CPU kernels.

A leaf module (it imports only the registry), so that the teaching modules and :mod:`helpers.teaching` itself
can all use it without importing each other.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from helpers.models import RETIRED as RETIRED_MODELS
from helpers.models import names

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The teaching models of the registry (:mod:`helpers.models`).
TEACHING_MODELS = tuple(names(backend="teaching"))


#: The CPU kernels the scene judge is fitted with on x86, in training and in the tests (:func:`pin_cpu_kernels`).
PINNED_CPU_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_cpu_kernels() -> bool:
    """Ask torch (and oneDNN) for their AVX2 kernels on an x86 CPU that has AVX2, even where it has AVX-512.

    Kernels of different instruction sets round differently in the last bits, and training amplifies that: a
    judge fitted with the same seed on an AVX-512 CPU differed from one fitted on an AVX2 CPU, and with these
    kernels it is the same file on the AMD EPYC (an Intel Xeon still fits other bytes, which read scenes alike).
    Effective only before torch first picks its kernels (call it before torch runs anything); a value already
    in the environment wins. Returns whether the pin applies here.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if " avx2" not in flags:
        return False
    for key, value in PINNED_CPU_KERNELS.items():
        os.environ.setdefault(key, value)
    return True


def cosine_schedule(opt, steps: int, warmup: float = 0.05):
    """diffusers' ``get_cosine_schedule_with_warmup`` with a warm-up of ``warmup`` of the ``steps`` (at least
    one step): the learning-rate schedule of the CLIP, unCLIP decoder, prior and super-res trainings."""
    from diffusers.optimization import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(opt, max(1, int(warmup * steps)), steps)


class TeachingWeightsMissingError(FileNotFoundError):
    """The shipped weights of a teaching model are not where the package expects them."""


__all__ = ["RETIRED_MODELS", "TEACHING_MODELS", "WEIGHTS_DIR", "TeachingWeightsMissingError", "cosine_schedule",
           "pin_cpu_kernels"]
