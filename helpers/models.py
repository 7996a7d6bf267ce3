"""The one registry of named models: every name the package, the walk files and ``make demo`` accept.

Introduced in notebook 01_diffusion_basics (``choose_backend`` picks from it). Each entry says which *backend*
serves it (``"real"`` on a GPU with hub access, ``"teaching"`` shipped in the package, ``"tiny-random"`` for CI),
which *kind* of pipeline it is (``"text2img"``: a ``StableDiffusionPipeline``; ``"unclip"``: an
``UnCLIPImageVariationPipeline``; ``"unclip-text"``: the text-to-image ``UnCLIPPipeline`` with a prior), where
its weights come from, and whether walk files may name it. Adding a model is one entry here. Pure data: importing
this module imports nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("teaching", "real", "tiny-random")
KINDS = ("text2img", "unclip", "unclip-text")

SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
KARLO_ID = "kakaobrain/karlo-v1-alpha-image-variations"
SDXL_ID = "stabilityai/stable-diffusion-xl-base-1.0"
SDXL_TURBO_ID = "stabilityai/sdxl-turbo"

GIB = 1024**3
#: Half-precision footprints per kind, (weights, peak activations of one frame), from the full-size check of
#: issue 16: SD 1.5 at 512x512 (2.13 GB of fp16 weights; one frame ~1 GiB with guidance, as
#: helpers.render.frame_bytes_estimate estimates), Karlo at 256x256 (5.04 GiB of fp16 weights; its
#: super-resolution stage peaks at 0.59 GiB per frame). :func:`helpers.pipelines.memory_plan` reads them.
#: SDXL: 6.94 GB of fp16 weights (UNet 5.14, text encoders 1.39 + 0.25, VAE 0.17) and, not measured here,
#: four times SD 1.5's activations for its four times the pixels at 1024x1024 (an estimate).
FOOTPRINTS = {"text2img": (int(2.13e9), 1 * GIB), "unclip": (int(5.04 * GIB), int(0.59 * GIB)),
              "sdxl": (int(6.94e9), 4 * GIB)}


@dataclass(frozen=True)
class Model:
    """One named model."""

    name: str
    backend: str
    kind: str
    title: str  # how the notebooks' device cell names it
    source: str | None = None  # the hub id of a real model
    walkable: bool = True  # walk files (``python -m helpers.walks``) may name it
    size: int | None = None  # a real text-to-image model's native image size (square)
    steps: int | None = None  # its sampler steps ...
    guidance: float | None = None  # ... and guidance scale, as its model card recommends
    tiny: str | None = None  # a tiny random model: the helpers.pipelines.tiny_pipeline kind that builds it


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("teaching", "teaching", "text2img", "the teaching model 'teaching'"),
    Model("teaching-unclip", "teaching", "unclip", "the teaching model 'teaching-unclip'"),
    Model("teaching-unclip-text", "teaching", "unclip-text", "the teaching model 'teaching-unclip-text'",
          walkable=False),
    Model("sd15", "real", "text2img", "Stable Diffusion 1.5", source=SD15_ID, size=512, steps=25, guidance=7.5),
    Model("karlo", "real", "unclip", "Karlo unCLIP", source=KARLO_ID),
    Model("sdxl", "real", "text2img", "Stable Diffusion XL", source=SDXL_ID, size=1024, steps=25, guidance=5.0),
    Model("sdxl-turbo", "real", "text2img", "SDXL-Turbo", source=SDXL_TURBO_ID, size=512, steps=4, guidance=0.0),
    Model("tiny-sd", "tiny-random", "text2img", "tiny random Stable Diffusion", tiny="text2img"),
    Model("tiny-unclip", "tiny-random", "unclip", "tiny random unCLIP", tiny="unclip"),
    Model("tiny-sdxl", "tiny-random", "text2img", "tiny random SDXL", tiny="sdxl"),
    Model("tiny-sd2", "tiny-random", "text2img", "tiny random SD 2.x (v-prediction)", tiny="sd2"),
)}
#: Retired names and the model that replaced them (asking for one is a clear error naming the successor).
RETIRED = {"teaching-digits": "teaching"}


def model_for(backend: str, kind: str) -> Model:
    """The model ``backend`` serves for ``kind`` by default, the first registered (``model_for("real",
    "unclip").name == "karlo"``; ``model_for("real", "text2img").name == "sd15"``)."""
    for model in MODELS.values():
        if model.backend == backend and model.kind == kind:
            return model
    raise ValueError(f"no {kind!r} model on the {backend!r} backend; the registry has: "
                     + ", ".join(f"{m.name} ({m.backend}, {m.kind})" for m in MODELS.values()))


def names(*, backend: str | None = None, kind: str | None = None, walkable: bool | None = None) -> list[str]:
    """The registered names, optionally only those of one backend, kind or walkability (registry order)."""
    return [m.name for m in MODELS.values()
            if (backend is None or m.backend == backend) and (kind is None or m.kind == kind)
            and (walkable is None or m.walkable == walkable)]


__all__ = ["BACKENDS", "FOOTPRINTS", "GIB", "KARLO_ID", "KINDS", "MODELS", "Model", "RETIRED", "SD15_ID", "SDXL_ID",
           "SDXL_TURBO_ID", "model_for", "names"]
