"""Latent Walks helpers: the small package behind the cookbook's notebooks.

The modules follow the lesson's data flow:

* :mod:`helpers.devices` — device, dtype and seeded generators (every notebook's Setup section).
* :mod:`helpers.backends` — which models a notebook runs on (``BACKEND``), and the library versions.
* :mod:`helpers.pipelines` — loading Stable Diffusion 1.5, Karlo unCLIP, the bundled teaching models,
  and tiny random pipelines for tests.
* :mod:`helpers.embeddings` — prompts, images and seeds turned into embeddings and latents.
* :mod:`helpers.inversion` — DDIM inversion, the one loop every model's inversion runs.
* :mod:`helpers.unclip` — unCLIP's bipartite latent: DDIM inversion and deterministic decoding.
* :mod:`helpers.morph` — morphing the user's own images with a text-to-image pipeline: inversion with captions,
  attention interpolation, img2img chains (notebook 08).
* :mod:`helpers.interpolation` — slerp, lerp and interpolation paths (notebook 02 onwards).
* :mod:`helpers.metrics`, :mod:`helpers.smooth` — how evenly a walk moves, and re-timing it (notebook 07).
* :mod:`helpers.render` — batched rendering of a whole path into frames; :mod:`helpers.walks` — whole walks on
  disk, resumable (``python -m helpers.walks WALK.yaml``, walk files in :mod:`helpers.walks.spec`).
* :mod:`helpers.media` — GIF/MP4 export, contact sheets and inline animations.
* :mod:`helpers.widgets` — the ipywidgets explorers, with static fallbacks.
* :mod:`helpers.teaching` — the small diffusion models trained by this project on CPU.
* :mod:`helpers.exercises` — ``check`` and the experiments behind every notebook's exercises.
* :mod:`helpers.demo` — ``make demo``.

``import helpers`` imports nothing else (not even torch): each public name is loaded from its module on first
use. The names are listed explicitly below, grouped by stage.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the public API, as readers and type checkers see it; at run time each name loads on first use
    from helpers.backends import choose_backend, print_versions
    from helpers.devices import make_generator, pick_dtype
    from helpers.embeddings import encode_images, encode_prompts, encode_text, make_latents
    from helpers.exercises import check
    from helpers.interpolation import (
        circular_walk,
        cosine_schedule,
        interpolation_path,
        lerp,
        linear_schedule,
        normalize,
        schedule_values,
        slerp,
        text_diff,
        walk_around,
    )
    from helpers.media import (
        export_gif,
        export_mp4,
        image_grid,
        load_image,
        save_image,
        show,
        to_pil,
        to_pil_list,
    )
    from helpers.metrics import (
        WalkReport,
        adjacent_distances,
        gini,
        latent_l2,
        one_minus_ssim,
        plot_distances,
        rmse,
        ssim,
        summary_table,
        walk_report,
    )
    from helpers.pipelines import load_pipeline, tiny_pipeline
    from helpers.render import render_frames
    from helpers.smooth import adain_interpolate, beta_schedule, invert_cumulative, retime
    from helpers.walks import render_walk
    from helpers.widgets import FrameExplorer, WalkExplorer

#: What the notebooks call, stage by stage (inputs → embeddings and latents → a path → frames → media and
#: widgets, then the measurements). Plumbing (atomic writes, device descriptions, memory options) stays in its
#: module: ``helpers.media.atomic_write``, ``helpers.pipelines.memory_plan``, ...
_EXPORTS: dict[str, str] = {
    # setup and models (every notebook's Setup section)
    "choose_backend": "backends",
    "print_versions": "backends",
    "make_generator": "devices",
    "pick_dtype": "devices",
    "load_pipeline": "pipelines",
    "tiny_pipeline": "pipelines",
    # inputs → embeddings and latents
    "encode_prompts": "embeddings",
    "encode_images": "embeddings",
    "encode_text": "embeddings",
    "make_latents": "embeddings",
    # paths
    "slerp": "interpolation",
    "lerp": "interpolation",
    "normalize": "interpolation",
    "interpolation_path": "interpolation",
    "circular_walk": "interpolation",
    "walk_around": "interpolation",
    "text_diff": "interpolation",
    "schedule_values": "interpolation",
    "linear_schedule": "interpolation",
    "cosine_schedule": "interpolation",
    # frames
    "render_frames": "render",
    "render_walk": "walks",
    # media and widgets
    "image_grid": "media",
    "show": "media",
    "export_gif": "media",
    "export_mp4": "media",
    "save_image": "media",
    "load_image": "media",
    "to_pil": "media",
    "to_pil_list": "media",
    "FrameExplorer": "widgets",
    "WalkExplorer": "widgets",
    # measuring and evening walks (notebook 07)
    "walk_report": "metrics",
    "WalkReport": "metrics",
    "summary_table": "metrics",
    "plot_distances": "metrics",
    "adjacent_distances": "metrics",
    "rmse": "metrics",
    "ssim": "metrics",
    "one_minus_ssim": "metrics",
    "latent_l2": "metrics",
    "gini": "metrics",
    "retime": "smooth",
    "invert_cumulative": "smooth",
    "adain_interpolate": "smooth",
    "beta_schedule": "smooth",
    # the exercises at the end of every notebook
    "check": "exercises",
}

__all__ = [
    "FrameExplorer", "WalkExplorer", "WalkReport", "adain_interpolate", "adjacent_distances",
    "beta_schedule", "check", "choose_backend", "circular_walk", "cosine_schedule", "encode_images",
    "encode_prompts", "encode_text", "export_gif", "export_mp4", "gini", "image_grid", "interpolation_path",
    "invert_cumulative", "latent_l2", "lerp", "linear_schedule", "load_image", "load_pipeline",
    "make_generator", "make_latents", "normalize", "one_minus_ssim", "pick_dtype", "plot_distances",
    "print_versions", "render_frames", "render_walk", "retime", "rmse", "save_image", "schedule_values",
    "show", "slerp", "ssim", "summary_table", "text_diff", "tiny_pipeline", "to_pil", "to_pil_list",
    "walk_around", "walk_report", "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"helpers.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
