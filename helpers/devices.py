"""Device, dtype and seeded generators: the Setup cell of every notebook.

Introduced in notebook 01_diffusion_basics (Setup section). The policy in one place:

* device: CUDA if present, else Apple MPS, else the CPU;
* dtype: bfloat16 on CUDA GPUs of compute capability 8.0 or above (Ampere, Ada, Hopper), float16 on older
  CUDA GPUs (a T4 *reports* bf16 support but only emulates it, slowly), float32 on MPS and the CPU;
* noise: drawn from a generator on the CPU by default, so one seed gives the same latents on every device
  (CUDA and CPU generators give different numbers for the same seed);
* CPU threads: half the cores this process may use (:func:`cpu_threads`): torch's default of one thread per
  core thrashes as soon as anything else runs (measured 8x slower on a 2-core machine beside one busy process).
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Iterator

import torch

#: Lowest CUDA compute capability with native bfloat16 arithmetic (Ampere).
BF16_MIN_CAPABILITY = (8, 0)


def get_device() -> torch.device:
    """The best available device: CUDA, then Apple MPS, then the CPU.

    Introduced in notebook 01_diffusion_basics.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _as_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return get_device()
    if isinstance(device, (str, torch.device)):
        return torch.device(device)
    raise TypeError(
        f"device must be a torch.device, a string such as 'cuda' or 'cpu', or None; got {device!r}"
    )


def check_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` this machine has (``None``: :func:`get_device`), or one ``ValueError``
    saying what is missing and what to pass instead (``TypeError`` for a value that is no device at all).

    Checked before any model loads: ``device="cuda"`` on a machine without a CUDA GPU used to end in torch's
    ``AssertionError: Torch not compiled with CUDA enabled`` after the weights were read.
    """
    if isinstance(device, str):
        try:
            device = torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps' (or None for the best one here); "
                             f"got {device!r}") from None
    device = _as_device(device)
    advice = "use device='cpu', or leave device out to use the best device here"
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = "" if torch.version.cuda else " (this torch is a CPU-only build)"
            raise ValueError(f"device={str(device)!r}, but this machine has no CUDA GPU that torch can use{build}; "
                             f"{advice}")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device={str(device)!r}, but this machine has {count} CUDA GPU(s): cuda:0 to "
                             f"cuda:{count - 1}")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device='mps', but Apple's MPS is not available here; {advice}")
    return device


def pick_dtype(device: str | torch.device | None = None) -> torch.dtype:
    """The dtype to run models in on ``device`` (default: :func:`get_device`).

    bfloat16 where the CUDA GPU's compute capability is 8.0 or above, float16 on older CUDA GPUs, float32
    on MPS and the CPU. The capability is checked directly, not ``torch.cuda.is_bf16_supported()``, which
    is true on a T4 although bf16 is only emulated there. GeForce GTX 16xx cards (capability 7.5 like the T4,
    but without its tensor cores) are widely reported to render NaN, i.e. black, frames in float16: they get
    float32.

    Introduced in notebook 01_diffusion_basics.
    """
    device = _as_device(device)
    if device.type != "cuda":
        return torch.float32
    capability = tuple(torch.cuda.get_device_capability(device))
    if capability >= BF16_MIN_CAPABILITY:
        return torch.bfloat16
    name = torch.cuda.get_device_name(device)
    return torch.float32 if "GTX 16" in name else torch.float16


def check_seed(seed: object) -> int:
    """``seed`` as an int if it is a whole number in [0, 2**64); else one ``TypeError`` / ``ValueError``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be a non-negative int, e.g. 0 or 1234; got {seed!r} ({type(seed).__name__})"
        )
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be between 0 and 2**64 - 1; got {seed}")
    return seed


def make_generator(seed: int, device: str | torch.device | None = None) -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed``, on the CPU unless ``device`` is given.

    Keep the default: a CPU generator gives the same noise for a seed whatever device the model runs on
    (diffusers moves CPU-drawn noise to the model's device). Seeds are non-negative ints.

    Introduced in notebook 01_diffusion_basics.
    """
    seed = check_seed(seed)
    device = torch.device("cpu") if device is None else _as_device(device)
    return torch.Generator(device=device).manual_seed(seed)


def clone_generator(generator: torch.Generator) -> torch.Generator:
    """A new generator on the same device in exactly the same state as ``generator`` (which is untouched)."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"expected a torch.Generator, got {type(generator).__name__}")
    copy = torch.Generator(device=generator.device)
    copy.set_state(generator.get_state())
    return copy


def describe_device(device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> str:
    """One sentence for a notebook's device cell: which device, which dtype, and why.

    Introduced in notebook 01_diffusion_basics.
    """
    device = _as_device(device)
    dtype = pick_dtype(device) if dtype is None else dtype
    name = str(dtype).removeprefix("torch.")
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        if dtype == torch.bfloat16:
            why = "bfloat16 is native from compute capability 8.0"
        elif dtype == torch.float16:
            why = "this GPU predates native bfloat16 (capability < 8.0), so float16 it is"
        else:
            why = "as requested"
        return f"Using CUDA GPU {gpu} (compute capability {major}.{minor}) in {name}: {why}."
    if device.type == "mps":
        return f"Using the Apple GPU (MPS) in {name}: half precision on MPS is not reliable for these models."
    if device.type == "cpu":
        return (
            f"Using the CPU in {name}: no CUDA or Apple GPU was found. The teaching models and tiny "
            "pipelines run fine here; Stable Diffusion and Karlo take minutes per frame."
        )
    return f"Using {device} in {name}."


def cpu_threads() -> int:
    """How many torch threads the notebooks use on the CPU: half the cores this process may run on (at least
    1, at most 8). On the project's 2-core machine one thread renders 8 teaching-model frames in 1.07 s against
    0.74 s with two when the machine is idle, and in 1.05 s against 8.6 s when one other busy process shares
    it: surplus threads spin, waiting for each other.

    Introduced in notebook 01_diffusion_basics (Setup).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores // 2))


def use_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default :func:`cpu_threads`) and return the number set.

    Called by :func:`helpers.backends.choose_backend` when it picks the CPU. Introduced in notebook
    01_diffusion_basics (Setup).
    """
    n = cpu_threads() if threads is None else threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def quiet_libraries(*, progress_bars: bool = False) -> Iterator[None]:
    """transformers and diffusers log only errors inside the block (restored after); ``progress_bars=False``
    also hides their loading bars. Their first pipeline import warns that torchvision is missing (the project
    never installs it; transformers then uses its PIL image processors, the same numbers): said once, by
    the README, not in every notebook. Introduced in notebook 01_diffusion_basics (Setup).
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = transformers_logging.get_verbosity(), diffusers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled(), diffusers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    diffusers_logging.set_verbosity_error()
    if not progress_bars:
        transformers_logging.disable_progress_bar()
        diffusers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(levels[0])
        diffusers_logging.set_verbosity(levels[1])
        if not progress_bars:
            for module, enabled in zip((transformers_logging, diffusers_logging), bars):
                (module.enable_progress_bar if enabled else module.disable_progress_bar)()


def dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """diffusers' ``from_pretrained`` keyword for ``dtype``: ``dtype=`` where diffusers knows it (it deprecates
    ``torch_dtype=`` with a FutureWarning from 0.42 on), ``torch_dtype=`` before (0.38 ignores ``dtype=``)."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401  (the release that added dtype=)
    except ImportError:
        return {"torch_dtype": dtype}
    return {"dtype": dtype}


def free_memory_bytes(device: str | torch.device) -> int | None:
    """Free CUDA memory usable by this process: the driver's free memory, also limited by a per-process cap.

    ``torch.cuda.set_per_process_memory_fraction`` caps what PyTorch may allocate without changing what the
    driver reports; this takes the smaller of the two, so the automatic batch size respects such a cap.
    ``None`` off CUDA.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    try:
        free, total = torch.cuda.mem_get_info(device)
    except RuntimeError:
        return None
    getter = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    if getter is not None:
        try:
            fraction = float(getter(device))
        except (RuntimeError, TypeError):
            fraction = 1.0
        if fraction < 1.0:
            capped = int(fraction * total) - torch.cuda.memory_reserved(device)
            free = min(free, max(capped, 0))
    return int(free)
