"""helpers.models: the one registry of named models, and every consumer reading it instead of its own table."""

from __future__ import annotations

import pytest

from helpers import backends, demo, models
from helpers.pipelines import MODEL_ALIASES, TEACHING_MODELS, load_pipeline
from helpers.walks import spec as walkfile

#: The pipeline class each kind means (diffusers' own class names: an independent fact).
CLASS_OF_KIND = {"text2img": "StableDiffusionPipeline", "unclip": "UnCLIPImageVariationPipeline",
                 "unclip-text": "UnCLIPPipeline"}


def test_entries_are_well_formed_and_every_backend_serves_every_walk_kind():
    for name, m in models.MODELS.items():
        assert m.name == name and m.backend in models.BACKENDS and m.kind in models.KINDS
        assert (m.source is not None) == (m.backend == "real")  # real models come from the hub, no others do
    for backend in models.BACKENDS:
        for kind in ("text2img", "unclip"):
            assert models.model_for(backend, kind).walkable
    with pytest.raises(ValueError, match="no 'unclip-text' model on the 'real' backend"):
        models.model_for("real", "unclip-text")
    assert set(models.RETIRED.values()) <= set(models.MODELS)


def test_the_hub_ids_are_the_real_checkpoints():
    assert MODEL_ALIASES == {"sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
                             "karlo": "kakaobrain/karlo-v1-alpha-image-variations",
                             "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
                             "sdxl-turbo": "stabilityai/sdxl-turbo",
                             "sd35-medium": "stabilityai/stable-diffusion-3.5-medium",
                             "sd35-large": "stabilityai/stable-diffusion-3.5-large",
                             "flux-schnell": "black-forest-labs/FLUX.1-schnell",
                             "flux-dev": "black-forest-labs/FLUX.1-dev"}


def test_consumers_read_the_registry():
    assert walkfile.MODELS == {m.name: (m.backend, m.kind) for m in models.MODELS.values() if m.walkable}
    assert "teaching-unclip-text" not in walkfile.MODELS  # the prior pipeline is not walkable
    assert TEACHING_MODELS == ("teaching", "teaching-unclip", "teaching-unclip-text", "teaching-flow")
    assert backends.REAL_MODELS == {"text2img": "sd15", "unclip": "karlo", "flow": "sd35-medium"}
    assert backends.TEACHING == {"text2img": "teaching", "unclip": "teaching-unclip", "flow": "teaching-flow"}
    assert backends.TINY == {"text2img": "tiny-sd", "unclip": "tiny-unclip", "flow": "tiny-sd3"}
    assert demo.MODELS == {"teaching": {"text2img": "teaching", "unclip": "teaching-unclip",
                                        "prior": "teaching-unclip-text"},
                           "sd15": {"text2img": "sd15", "unclip": "karlo"},
                           "sdxl": {"text2img": "sdxl", "unclip": "karlo"},  # text walks on SDXL, images on Karlo
                           "sdxl-turbo": {"text2img": "sdxl-turbo", "unclip": "karlo"},
                           **{name: {"text2img": name, "unclip": "karlo"}  # flow transformers; images on Karlo
                              for name in ("sd35-medium", "sd35-large", "flux-schnell", "flux-dev")}}


@pytest.mark.parametrize("name", models.names(backend="teaching"))
def test_every_teaching_model_loads_as_its_kinds_class(name):
    pipe = load_pipeline(name, device="cpu")
    flow = models.MODELS[name].family == "sd3"  # the teaching flow model: SD 3's own pipeline class
    assert type(pipe).__name__ == ("StableDiffusion3Pipeline" if flow else CLASS_OF_KIND[models.MODELS[name].kind])
    assert pipe._progress_bar_config.get("disable") is True  # no per-step bars after load_pipeline


@pytest.mark.parametrize("kind", ["text2img", "unclip"])
def test_the_tiny_backend_names_its_registry_model(kind):
    backend = backends.choose_backend("tiny-random", kind)
    assert backend.model == models.model_for("tiny-random", kind).name
    assert type(backend.pipe).__name__ == CLASS_OF_KIND[kind]


def test_retired_names_say_what_replaced_them(tmp_path):
    with pytest.raises(ValueError, match="'teaching'"):
        load_pipeline("teaching-digits")
    with pytest.raises(walkfile.WalkSpecError, match="model: teaching"):
        walkfile.parse_walk_spec({"model": "teaching-digits", "prompts": ["a", "b"], "frames": 2})
