"""Latent Walks helpers: the small package behind the cookbook's notebooks.

The modules follow the lesson's data flow:

* :mod:`helpers.devices` — device, dtype and seeded generators (every notebook's Setup section).
* :mod:`helpers.backends` — which models a notebook runs on (``BACKEND``), and the library versions.
* :mod:`helpers.pipelines` — loading Stable Diffusion 1.5, Karlo unCLIP, the bundled teaching models,
  and tiny random pipelines for tests.
* :mod:`helpers.embeddings` — prompts, images and seeds turned into embeddings and latents.
* :mod:`helpers.unclip` — unCLIP's bipartite latent: DDIM inversion and deterministic decoding.
* :mod:`helpers.morph` — morphing the user's own images with a text-to-image pipeline: inversion with captions,
  attention interpolation, img2img chains (notebook 08).
* :mod:`helpers.interpolation` — slerp, lerp and interpolation paths (notebook 02 onwards).
* :mod:`helpers.metrics`, :mod:`helpers.smooth` — how evenly a walk moves, and re-timing it (notebook 07).
* :mod:`helpers.render` — batched rendering of a whole path into frames; :mod:`helpers.walks` — whole walks on
  disk, resumable
  (``python -m helpers.walks WALK.yaml``, walk files in :mod:`helpers.walks.spec`).
* :mod:`helpers.media` — GIF/MP4 export, contact sheets and inline animations.
* :mod:`helpers.widgets` — the ipywidgets explorers, with static fallbacks.
* :mod:`helpers.teaching` — the small diffusion models trained by this project on CPU.
* :mod:`helpers.demo` — ``make demo``.

Nothing heavy happens at import time: names are resolved from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # interpolation
    "slerp": "interpolation",
    "lerp": "interpolation",
    "interpolation_path": "interpolation",
    "circular_walk": "interpolation",
    "walk_around": "interpolation",
    "text_diff": "interpolation",
    "normalize": "interpolation",
    "schedule_values": "interpolation",
    "linear_schedule": "interpolation",
    "cosine_schedule": "interpolation",
    # media
    "to_pil": "media",
    "export_gif": "media",
    "export_mp4": "media",
    "image_grid": "media",
    "show": "media",
    "to_pil_list": "media",
    "save_image": "media",
    "load_image": "media",
    "atomic_write": "media",
    # devices
    "get_device": "devices",
    "pick_dtype": "devices",
    "make_generator": "devices",
    "describe_device": "devices",
    # pipelines
    "load_pipeline": "pipelines",
    "tiny_pipeline": "pipelines",
    "ModelUnavailableError": "pipelines",
    "load_teaching_pipeline": "teaching",
    # embeddings
    "encode_prompts": "embeddings",
    "encode_images": "embeddings",
    "make_latents": "embeddings",
    "encode_text": "embeddings",
    # rendering
    "render_frames": "render",
    "render_walk": "walks",
    "speed_options": "render",
    # metrics (notebook 07)
    "rmse": "metrics",
    "ssim": "metrics",
    "one_minus_ssim": "metrics",
    "latent_l2": "metrics",
    "adjacent_distances": "metrics",
    "gini": "metrics",
    "walk_report": "metrics",
    "WalkReport": "metrics",
    "summary_table": "metrics",
    "plot_distances": "metrics",
    # making walks even (notebook 07)
    "retime": "smooth",
    "invert_cumulative": "smooth",
    "adain_interpolate": "smooth",
    "beta_schedule": "smooth",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"helpers.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
