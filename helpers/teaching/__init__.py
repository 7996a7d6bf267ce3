"""The teaching models: small diffusion models trained by this project on CPU and shipped in the package.

Introduced in notebook 01_diffusion_basics. See ``helpers/teaching/README.md`` for the model cards.

* :mod:`helpers.teaching.scenes` — the teaching world: 48 colour emoji objects on plain backgrounds, captioned.
* :mod:`helpers.teaching.judge` — judges of that world fitted on ground truth (object, size, background).
* :mod:`helpers.teaching.toy2d` — the 2-D S-curve DDPM trained live in notebook 01.
* :mod:`helpers.teaching.text2img` — ``"teaching"``, a tiny ``StableDiffusionPipeline``.
* :mod:`helpers.teaching.unclip_model` — ``"teaching-unclip"`` (image variations) and
  ``"teaching-unclip-text"`` (text → prior → decoder), a miniature unCLIP; its prior in
  :mod:`helpers.teaching.prior`.
* :mod:`helpers.teaching.flow_model` — ``"teaching-flow"``, a small SD 3-style flow-matching transformer;
  :mod:`helpers.teaching.toy_flow` — the 2-D flow-matching toy of notebook 10.
* :mod:`helpers.teaching.train` — ``python -m helpers.teaching.train`` retrains them all (``make teaching-models``).

Nothing is loaded at import time.
"""

from __future__ import annotations

from typing import Any

from helpers.teaching.common import RETIRED_MODELS, TEACHING_MODELS, WEIGHTS_DIR, TeachingWeightsMissingError


def load_teaching_pipeline(name: str, *, device: Any = None, dtype: Any = None) -> Any:
    """Load a shipped teaching model: ``"teaching"``, ``"teaching-unclip"``, ``"teaching-unclip-text"`` or
    ``"teaching-flow"``.

    ``"teaching"`` is a stock diffusers ``StableDiffusionPipeline`` (no safety checker), ``"teaching-unclip"``
    an ``UnCLIPImageVariationPipeline``, ``"teaching-unclip-text"`` an ``UnCLIPPipeline`` and
    ``"teaching-flow"`` a ``StableDiffusion3Pipeline`` (no T5); moved to
    ``device``/``dtype`` when given. Introduced in notebook 01_diffusion_basics.
    """
    if name in RETIRED_MODELS:
        raise ValueError(f"The teaching model {name!r} was retired with the digit world; use "
                         f"{RETIRED_MODELS[name]!r} (emoji scenes) instead.")
    if name == "teaching":
        folder = WEIGHTS_DIR / name
        if not (folder / "model_index.json").is_file():
            raise TeachingWeightsMissingError(
                f"The teaching model weights are missing from {folder}. Run `make teaching-models` "
                "(or `python -m helpers.teaching.train --only text2img`) to train them."
            )
        import torch

        from helpers.devices import dtype_kwarg, quiet_libraries

        cast = dtype_kwarg(dtype) if dtype is not None and dtype != torch.float32 else {}  # the weights: float32
        with quiet_libraries():  # loads in well under a second: no loading bars
            from diffusers import StableDiffusionPipeline

            pipe = StableDiffusionPipeline.from_pretrained(
                str(folder), safety_checker=None, requires_safety_checker=False, **cast
            )
        return pipe.to(device) if device is not None else pipe
    if name == "teaching-flow":
        from helpers.teaching.flow_model import load_teaching_flow

        return load_teaching_flow(device=device, dtype=dtype)
    if name in ("teaching-unclip", "teaching-unclip-text"):
        from helpers.teaching.unclip_model import load_teaching_unclip

        return load_teaching_unclip(device=device, dtype=dtype, text=name == "teaching-unclip-text")
    raise ValueError(f"Unknown teaching model {name!r}; choose one of {', '.join(TEACHING_MODELS)}.")


__all__ = ["WEIGHTS_DIR", "TEACHING_MODELS", "RETIRED_MODELS", "TeachingWeightsMissingError", "load_teaching_pipeline"]
