"""Single-file checkpoints (``.safetensors`` / ``.ckpt``) through ``load_pipeline``, offline.

A tiny random Stable Diffusion pipeline is written in the original (LDM) key layout by ``tests/ldm_checkpoint.py``
and loaded back by diffusers' ``from_single_file`` behind ``load_pipeline``. The independent references: the
original pipeline's own tensors and frames.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ldm_checkpoint import save_single_file

from helpers import encode_prompts, interpolation, make_latents, render_frames, slerp, tiny_pipeline
from helpers.pipelines import load_pipeline, single_file_type

KW = {"num_inference_steps": 2, "guidance_scale": 3.0, "output_type": "np", "progress": False}


@pytest.fixture(scope="module")
def original():
    return tiny_pipeline("text2img")


@pytest.fixture(scope="module")
def files(original, tmp_path_factory):
    root = tmp_path_factory.mktemp("single-file")
    original.save_pretrained(root / "configs")  # what `config=` points at: the components' configs
    return {suffix: save_single_file(original, root / f"tiny{suffix}") for suffix in (".safetensors", ".ckpt")}, \
        root / "configs"


def _load(path, configs):
    return load_pipeline(str(path), device="cpu", dtype=torch.float32, config=str(configs), local_files_only=True)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_a_single_file_loads_back_every_weight_of_the_pipeline_it_was_written_from(suffix, original, files):
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    paths, configs = files
    assert single_file_type(paths[suffix]) == "v1"
    pipe = _load(paths[suffix], configs)
    assert type(pipe) is StableDiffusionPipeline and isinstance(pipe.scheduler, DDIMScheduler)
    assert pipe.safety_checker is None  # the walk policy, as for every other entry point
    for part in ("unet", "vae", "text_encoder"):
        want, got = getattr(original, part).state_dict(), getattr(pipe, part).state_dict()
        assert set(want) <= set(got), part
        for key in want:
            torch.testing.assert_close(got[key].reshape(want[key].shape), want[key], rtol=0, atol=0, msg=key)


def test_walks_render_from_a_single_file_as_from_the_original_chunked_or_not(original, files):
    paths, configs = files
    pipe = _load(paths[".safetensors"], configs)
    embeds, negative = encode_prompts(pipe, ["a red cat", "a blue dog"])
    ref_embeds, _ = encode_prompts(original, ["a red cat", "a blue dog"])
    torch.testing.assert_close(embeds, ref_embeds)
    prompt_walk = slerp(embeds[0], embeds[1], np.linspace(0, 1, 5).tolist())
    loop = interpolation.circular_walk(make_latents(pipe, 1)[0], make_latents(pipe, 2)[0], 5)
    for inputs in ({"prompt_embeds": prompt_walk}, {"prompt_embeds": embeds[:1].expand(5, -1, -1), "latents": loop}):
        together = render_frames(pipe, negative_prompt_embeds=negative[:1], seed=0, batch_size=5, **inputs, **KW)
        one_by_one = render_frames(pipe, negative_prompt_embeds=negative[:1], seed=0, batch_size=1, **inputs, **KW)
        again = render_frames(pipe, negative_prompt_embeds=negative[:1], seed=0, batch_size=5, **inputs, **KW)
        reference = render_frames(original, negative_prompt_embeds=negative[:1], seed=0, batch_size=5, **inputs, **KW)
        assert together.shape[0] == 5 and np.array_equal(together, again)
        assert np.abs(together - one_by_one).max() < 1e-4
        assert np.abs(together - reference).max() < 1e-4
        assert np.abs(together[0] - together[2]).max() > 1e-3  # the walk moves


def test_what_cannot_be_walked_is_refused_before_loading(tmp_path):
    from safetensors.torch import save_file

    weird = tmp_path / "weird.safetensors"
    save_file({"encoder.weight": torch.zeros(2, 2)}, str(weird))
    with pytest.raises(ValueError, match="no Stable Diffusion weights"):
        load_pipeline(str(weird), device="cpu")
    fill = tmp_path / "flux_fill.safetensors"  # FLUX.1 Fill (inpainting: 384 input channels) is not a walk model
    save_file({"double_blocks.0.img_attn.norm.key_norm.scale": torch.zeros(4), "img_in.weight": torch.zeros(4, 384),
               "guidance_in.in_layer.bias": torch.zeros(4)}, str(fill))
    with pytest.raises(ValueError, match="'flux-fill' checkpoint.*FLUX.1 dev / schnell"):
        load_pipeline(str(fill), device="cpu")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")  # a header that says nothing
    with pytest.raises(ValueError, match="cannot read the checkpoint"):
        load_pipeline(str(broken), device="cpu")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    with pytest.raises(ValueError, match=r"end in \.safetensors or \.ckpt"):
        load_pipeline(str(notes), device="cpu")


def test_offline_without_configs_is_one_error_that_says_what_a_single_file_lacks(files, monkeypatch):
    from helpers.pipelines import ModelUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    paths, _ = files
    with pytest.raises(ModelUnavailableError, match="checkpoint file.*config=") as err:
        load_pipeline(str(paths[".safetensors"]), device="cpu", dtype=torch.float32)
    assert err.value.__cause__ is None and err.value.__suppress_context__
