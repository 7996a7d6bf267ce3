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
SD35_MEDIUM_ID = "stabilityai/stable-diffusion-3.5-medium"
SD35_LARGE_ID = "stabilityai/stable-diffusion-3.5-large"
FLUX_SCHNELL_ID = "black-forest-labs/FLUX.1-schnell"
FLUX_DEV_ID = "black-forest-labs/FLUX.1-dev"

GIB = 1024**3
#: Half-precision footprints per kind, (weights, peak activations of one frame), from the full-size check of
#: issue 16: SD 1.5 at 512x512 (2.13 GB of fp16 weights; one frame ~1 GiB with guidance, as
#: helpers.render.frame_bytes_estimate estimates), Karlo at 256x256 (5.04 GiB of fp16 weights; its
#: super-resolution stage peaks at 0.59 GiB per frame). :func:`helpers.pipelines.memory_plan` reads them.
#: SDXL: 6.94 GB of fp16 weights (UNet 5.14, text encoders 1.39 + 0.25, VAE 0.17) and, not measured here,
#: four times SD 1.5's activations for its four times the pixels at 1024x1024 (an estimate).
FOOTPRINTS = {"text2img": (int(2.13e9), 1 * GIB), "unclip": (int(5.04 * GIB), int(0.59 * GIB)),
              "sdxl": (int(6.94e9), 4 * GIB)}
#: Flow models, *estimated* from parameter counts at 2 bytes a parameter (no GPU was lent to measure them):
#: (all weights, the largest single component, activations of one 1,024 px frame). The components: T5-XXL's
#: encoder 4.76 B parameters (9.5 GB), CLIP-G 0.69 B, CLIP-L 0.12 B, the VAE 0.08 B; the transformers: SD 3.5
#: medium 2.47 B, SD 3.5 large 8.1 B, FLUX.1 11.9 B. One frame's activations: 2 GiB (SD 3.5) and 3 GiB
#: (FLUX), from 4,096 image tokens, an estimate. Model CPU offload keeps one component on the GPU at a time,
#: so the largest one (and a frame) must fit; else only sequential offload (layer by layer, slow) fits.
FLOW_FOOTPRINTS = {
    "sd35-medium": (int(16.2e9), int(9.5e9), 2 * GIB),
    "sd35-large": (int(27.4e9), int(16.2e9), 2 * GIB),
    "flux-schnell": (int(33.7e9), int(23.8e9), 3 * GIB),
    "flux-dev": (int(33.7e9), int(23.8e9), 3 * GIB),
}


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
    family: str = "sd"  # helpers.pipeline_info.FAMILIES: what the loaded pipeline is
    download_gb: float | None = None  # a real flow model: the half-precision weights a first load fetches
    licence: str | None = None  # ... and the licence its weights come under (gated: accept it on the hub first)


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("teaching", "teaching", "text2img", "the teaching model 'teaching'"),
    Model("teaching-unclip", "teaching", "unclip", "the teaching model 'teaching-unclip'"),
    Model("teaching-unclip-text", "teaching", "unclip-text", "the teaching model 'teaching-unclip-text'",
          walkable=False),
    Model("teaching-flow", "teaching", "text2img", "the teaching flow model 'teaching-flow'", family="sd3"),
    Model("sd15", "real", "text2img", "Stable Diffusion 1.5", source=SD15_ID, size=512, steps=25, guidance=7.5),
    Model("karlo", "real", "unclip", "Karlo unCLIP", source=KARLO_ID),
    Model("sdxl", "real", "text2img", "Stable Diffusion XL", source=SDXL_ID, size=1024, steps=25, guidance=5.0),
    Model("sdxl-turbo", "real", "text2img", "SDXL-Turbo", source=SDXL_TURBO_ID, size=512, steps=4, guidance=0.0),
    Model("tiny-sd", "tiny-random", "text2img", "tiny random Stable Diffusion", tiny="text2img"),
    Model("tiny-unclip", "tiny-random", "unclip", "tiny random unCLIP", tiny="unclip"),
    Model("tiny-sdxl", "tiny-random", "text2img", "tiny random SDXL", tiny="sdxl"),
    Model("tiny-sd2", "tiny-random", "text2img", "tiny random SD 2.x (v-prediction)", tiny="sd2"),
    Model("sd35-medium", "real", "text2img", "Stable Diffusion 3.5 Medium", source=SD35_MEDIUM_ID, size=1024,
          steps=40, guidance=4.5, family="sd3", download_gb=16.2,
          licence="Stability AI Community License (gated; free under USD 1 M annual revenue)"),
    Model("sd35-large", "real", "text2img", "Stable Diffusion 3.5 Large", source=SD35_LARGE_ID, size=1024,
          steps=28, guidance=3.5, family="sd3", download_gb=27.4,
          licence="Stability AI Community License (gated; free under USD 1 M annual revenue)"),
    Model("flux-schnell", "real", "text2img", "FLUX.1 [schnell]", source=FLUX_SCHNELL_ID, size=1024, steps=4,
          guidance=0.0, family="flux", download_gb=33.7, licence="Apache-2.0"),
    Model("flux-dev", "real", "text2img", "FLUX.1 [dev]", source=FLUX_DEV_ID, size=1024, steps=50, guidance=3.5,
          family="flux", download_gb=33.7, licence="FLUX.1 [dev] Non-Commercial License (gated)"),
    Model("tiny-sd3", "tiny-random", "text2img", "tiny random Stable Diffusion 3", tiny="sd3", family="sd3"),
    Model("tiny-flux", "tiny-random", "text2img", "tiny random FLUX.1", tiny="flux", family="flux"),
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


__all__ = ["BACKENDS", "FLOW_FOOTPRINTS", "FLUX_DEV_ID", "FLUX_SCHNELL_ID", "FOOTPRINTS", "GIB", "KARLO_ID", "KINDS",
           "MODELS", "Model", "RETIRED", "SD15_ID", "SD35_LARGE_ID", "SD35_MEDIUM_ID", "SDXL_ID",
           "SDXL_TURBO_ID", "model_for", "names"]
