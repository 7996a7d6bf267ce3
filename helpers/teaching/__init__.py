"""The teaching models: small diffusion models trained by this project on CPU and shipped in the package.

Introduced in notebook 01_diffusion_basics. See ``helpers/teaching/README.md`` for the model cards.

* :mod:`helpers.teaching.toy2d` — the 2-D S-curve DDPM trained live in notebook 01.
* :mod:`helpers.teaching.text2img` — ``"teaching-digits"``, a tiny ``StableDiffusionPipeline``.
* :mod:`helpers.teaching.unclip_model` — ``"teaching-unclip"``, a miniature unCLIP.
* :mod:`helpers.teaching.train` — ``python -m helpers.teaching.train`` retrains them all (``make teaching-models``).

Nothing is loaded at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
TEACHING_MODELS = ("teaching-digits", "teaching-unclip")


class TeachingWeightsMissingError(FileNotFoundError):
    """The shipped weights of a teaching model are not where the package expects them."""


def load_teaching_pipeline(name: str, *, device: Any = None, dtype: Any = None) -> Any:
    """Load a shipped teaching model: ``"teaching-digits"`` or ``"teaching-unclip"``.

    ``"teaching-digits"`` is a stock diffusers ``StableDiffusionPipeline`` (no safety checker), moved to
    ``device``/``dtype`` when given. Introduced in notebook 01_diffusion_basics.
    """
    if name == "teaching-digits":
        folder = WEIGHTS_DIR / name
        if not (folder / "model_index.json").is_file():
            raise TeachingWeightsMissingError(
                f"The teaching model weights are missing from {folder}. Run `make teaching-models` "
                "(or `python -m helpers.teaching.train --only text2img`) to train them."
            )
        import torch
        from diffusers import StableDiffusionPipeline

        cast = {"torch_dtype": dtype} if dtype is not None and dtype != torch.float32 else {}  # weights: float32
        pipe = StableDiffusionPipeline.from_pretrained(
            str(folder), safety_checker=None, requires_safety_checker=False, **cast
        )
        return pipe.to(device) if device is not None else pipe
    if name == "teaching-unclip":
        from helpers.teaching.unclip_model import load_teaching_unclip

        return load_teaching_unclip(device=device, dtype=dtype)
    raise ValueError(f"Unknown teaching model {name!r}; choose one of {', '.join(TEACHING_MODELS)}.")


__all__ = ["WEIGHTS_DIR", "TEACHING_MODELS", "TeachingWeightsMissingError", "load_teaching_pipeline"]
