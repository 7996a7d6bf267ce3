"""SDXL and SD 2.x through the same API: tiny random components of the real classes, offline.

Independent references: the pipelines themselves called directly with diffusers' own embeddings, and rendering
one frame at a time against rendering in one batch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import encode_prompts, interpolation, make_latents, render_frames, slerp, tiny_pipeline
from helpers.backends import choose_backend
from helpers.embeddings import pack_pooled, unpack_pooled
from helpers.pipeline_info import is_sdxl


@pytest.fixture(scope="module")
def sdxl():
    return tiny_pipeline("sdxl")


@pytest.fixture(scope="module")
def sd2():
    return tiny_pipeline("sd2")


def test_packing_keeps_both_embeddings_through_any_linear_walk() -> None:
    g = torch.Generator().manual_seed(0)
    tokens, pooled = torch.randn(2, 5, 8, generator=g), torch.randn(2, 3, generator=g)
    packed = pack_pooled(tokens, pooled)
    assert packed.shape == (2, 6, 8)
    back_tokens, back_pooled = unpack_pooled(packed, 3)
    assert torch.equal(back_tokens, tokens) and torch.equal(back_pooled, pooled)
    walk = slerp(packed[0], packed[1], [0.0, 0.3, 1.0])  # the padding stays zero on the way
    mid_tokens, mid_pooled = unpack_pooled(walk, 3)
    assert torch.allclose(mid_tokens[0], tokens[0], atol=1e-6) and torch.allclose(mid_pooled[2], pooled[1], atol=1e-6)
    with pytest.raises(ValueError, match="pooled embedding as their last token"):
        unpack_pooled(tokens, 3, tokens=5)  # unpacked: 5 tokens where a packed tensor has 5 + 1


def test_sdxl_prompts_are_both_encoders_and_the_pooled_embedding(sdxl) -> None:
    assert is_sdxl(sdxl) and not is_sdxl(tiny_pipeline("text2img"))
    embeds, negative = encode_prompts(sdxl, ["a red cat", "a blue dog"], negative_prompt="blurry")
    want = sdxl.encode_prompt(["a red cat", "a blue dog"], device="cpu", num_images_per_prompt=1,
                              do_classifier_free_guidance=True, negative_prompt=["blurry", "blurry"])
    width = sdxl.text_encoder_2.config.projection_dim
    tokens, pooled = unpack_pooled(embeds, width)
    neg_tokens, neg_pooled = unpack_pooled(negative, width)
    for got, ref in zip((tokens, neg_tokens, pooled, neg_pooled), want):
        torch.testing.assert_close(got, ref)
    assert tokens.shape[-1] == sdxl.unet.config.cross_attention_dim  # both encoders' tokens side by side


def test_sdxl_frames_are_what_the_pipeline_draws_from_the_same_inputs(sdxl) -> None:
    embeds, negative = encode_prompts(sdxl, ["a red cat", "a blue dog"])
    kwargs = {"num_inference_steps": 2, "guidance_scale": 3.0, "height": 32, "width": 32}
    frames = render_frames(sdxl, prompt_embeds=embeds, negative_prompt_embeds=negative[:1], seed=0,
                           output_type="np", progress=False, **kwargs)
    latents = make_latents(sdxl, 0, height=32, width=32)
    pe, ne, pp, npp = sdxl.encode_prompt(["a blue dog"], device="cpu", num_images_per_prompt=1,
                                         do_classifier_free_guidance=True, negative_prompt=[""])
    direct = sdxl(prompt_embeds=pe, negative_prompt_embeds=ne, pooled_prompt_embeds=pp,
                  negative_pooled_prompt_embeds=npp, latents=latents, output_type="np", **kwargs).images
    assert np.abs(frames[1] - direct[0]).max() < 1e-4


@pytest.mark.parametrize("kind", ["sdxl", "sd2"])
def test_prompt_walks_and_noise_loops_do_not_depend_on_chunking(kind, sdxl, sd2) -> None:
    pipe = {"sdxl": sdxl, "sd2": sd2}[kind]
    embeds, negative = encode_prompts(pipe, ["a red cat", "a blue dog"])
    kwargs = {"num_inference_steps": 2, "guidance_scale": 3.0, "height": 32, "width": 32, "output_type": "np",
              "progress": False}
    prompt_walk = slerp(embeds[0], embeds[1], np.linspace(0, 1, 5).tolist())
    loop = interpolation.circular_walk(make_latents(pipe, 1, height=32, width=32)[0],
                                       make_latents(pipe, 2, height=32, width=32)[0], 5)
    for inputs in ({"prompt_embeds": prompt_walk},
                   {"prompt_embeds": embeds[:1].expand(5, -1, -1), "latents": loop}):
        together = render_frames(pipe, negative_prompt_embeds=negative[:1], seed=0, batch_size=5, **inputs, **kwargs)
        one_by_one = render_frames(pipe, negative_prompt_embeds=negative[:1], seed=0, batch_size=1, **inputs,
                                   **kwargs)
        again = render_frames(pipe, negative_prompt_embeds=negative[:1], seed=0, batch_size=5, **inputs, **kwargs)
        assert together.shape == (5, 32, 32, 3)
        assert np.abs(together - one_by_one).max() < 1e-4
        assert np.array_equal(together, again)
        assert np.abs(together[0] - together[2]).max() > 1e-3  # the walk moves


def test_v_prediction_is_what_the_sd2_pipeline_runs(sd2) -> None:
    assert sd2.scheduler.config.prediction_type == "v_prediction"


def test_sdxl_walks_render_resumably_into_a_folder(sdxl, tmp_path) -> None:
    from helpers.walks import render_walk

    embeds, negative = encode_prompts(sdxl, ["a red cat", "a blue dog"])
    path = slerp(embeds[0], embeds[1], [0.0, 0.5, 1.0])
    kwargs = {"prompt_embeds": path, "negative_prompt_embeds": negative[:1], "seed": 0, "progress": False,
              "num_inference_steps": 2, "guidance_scale": 3.0, "height": 32, "width": 32}
    first = render_walk(sdxl, tmp_path / "walk", **kwargs)
    second = render_walk(sdxl, tmp_path / "walk", **kwargs)
    assert first.rendered == [0, 1, 2] and second.rendered == [] and len(second.frames) == 3


def test_tiny_backends_name_the_model_they_stand_in_for() -> None:
    backend = choose_backend("tiny-random", "text2img", model="tiny-sdxl")
    assert is_sdxl(backend.pipe) and backend.model == "tiny-sdxl" and "Stable Diffusion XL" in backend.reason
    with pytest.raises(ValueError, match="tiny-sdxl"):
        choose_backend("tiny-random", "text2img", model="sdxl")
    with pytest.raises(ValueError, match="BACKEND='real'"):
        choose_backend("teaching", "text2img", model="sdxl")


def test_sdxl_loads_as_sdxl_with_its_half_precision_files(monkeypatch, sdxl) -> None:
    from diffusers import StableDiffusionXLPipeline

    from helpers.pipelines import load_pipeline, resolve_model

    seen = {}

    def fake(source, **kwargs):
        seen.update(kwargs, source=source)
        return sdxl

    monkeypatch.setattr(StableDiffusionXLPipeline, "from_pretrained", fake)
    assert resolve_model("sdxl")[:2] == ("sdxl", "stabilityai/stable-diffusion-xl-base-1.0")
    pipe = load_pipeline("sdxl", device="cpu", dtype=torch.float16)
    assert pipe is sdxl and seen["variant"] == "fp16" and seen["source"].endswith("stable-diffusion-xl-base-1.0")
    pipe.to(torch.float32)


def test_the_memory_policy_fits_sdxl_at_1024_on_a_15_gb_t4() -> None:
    from helpers.models import FOOTPRINTS, GIB
    from helpers.pipelines import memory_plan

    t4_free = int(14.5 * GIB)  # a 15 GB T4 once CUDA has its context
    weights, frame = FOOTPRINTS["sdxl"]
    assert weights + frame <= t4_free < weights + 4 * frame  # one frame fits, four do not
    assert memory_plan(t4_free, "cuda", "sdxl") == ["vae_slicing", "vae_tiling"]  # no offload: it fits
    assert "model_cpu_offload" in memory_plan(6 * GIB, "cuda", "sdxl")


def test_a_pipeline_that_cannot_be_walked_is_refused_with_one_error(tmp_path) -> None:
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    from helpers.pipelines import load_pipeline

    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, layers_per_block=1)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(tmp_path / "ddpm")
    with pytest.raises(ValueError, match="DDPMPipeline, which helpers cannot walk"):
        load_pipeline(str(tmp_path / "ddpm"), device="cpu")


def test_the_full_size_sdxl_configuration_is_consistent_with_itself() -> None:
    """make test-fullsize builds SDXL from these numbers: the UNet must take both encoders' tokens side by
    side and the pooled embedding plus six time ids of 256 each (SDXL's micro-conditioning)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import fullsize

    unet, text, text_2 = fullsize.SDXL_UNET, fullsize.SDXL_TEXT, fullsize.SDXL_TEXT_2
    assert unet["cross_attention_dim"] == text["hidden_size"] + text_2["hidden_size"]
    assert unet["projection_class_embeddings_input_dim"] == 6 * unet["addition_time_embed_dim"] + text_2["projection_dim"]
    assert fullsize.SDXL_VAE["sample_size"] == unet["sample_size"] * 8  # 1024 px from 128 latent positions


def _fullsize():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import fullsize

    return fullsize


def _stored_bytes(model: str, t5: bool = True) -> dict:
    """What each component of the full-size build would store in bfloat16 (built on the meta device)."""
    import torch

    fullsize = _fullsize()
    with torch.device("meta"):
        pipe = fullsize.build_flow(model, t5=t5)
    return {name: 2 * n for name, n in fullsize._sizes(pipe).items()}


def test_the_full_size_sd35_medium_and_flux_are_the_published_ones() -> None:
    """make test-fullsize and the GPU check build SD 3.5 medium and FLUX.1 [schnell] from these numbers: in
    bfloat16 each component stores what the published checkpoints weigh (the hub's file listings: SD 3.5
    medium's transformer 4.94 GB, CLIP-L 247 MB, CLIP-G 1.39 GB, VAE 168 MB; FLUX.1's transformer 23.8 GB in three
    shards, T5-XXL's encoder 9.52 GB in two), and helpers' memory plan estimates agree with them."""
    from helpers.models import FLOW_FOOTPRINTS

    sd35 = _stored_bytes("sd35")
    published = {"transformer": 4.94e9, "text_encoder": 0.247e9, "text_encoder_2": 1.39e9, "vae": 0.168e9,
                 "text_encoder_3": 9.52e9}
    for name, size in published.items():
        assert sd35[name] == pytest.approx(size, rel=0.005), name
    flux = _stored_bytes("flux")
    assert flux["transformer"] == pytest.approx(23.8e9, rel=0.005)
    assert flux["text_encoder_2"] == pytest.approx(9.52e9, rel=0.005)
    for name, parts in (("sd35-medium", sd35), ("flux-schnell", flux)):
        weights, largest, _ = FLOW_FOOTPRINTS[name]
        assert sum(parts.values()) == pytest.approx(weights, rel=0.01), name
        assert max(parts.values()) == pytest.approx(largest, rel=0.01), name


def test_the_sd35_fullsize_entry_runs_through_the_public_api_at_smoke_size() -> None:
    """`python -m benchmarks.fullsize --only sd35` with tiny stand-ins: one step through encode_prompts and
    render_frames (16 image tokens from 8x8 latents in 2x2 patches, CLIP's 77 + T5's 256 text tokens), or, asked
    for one block, no pipeline at all."""
    fullsize = _fullsize()
    out = fullsize.run_sd35(fullsize.SMOKE_CONFIGS["sd35"])
    assert out["mode"].startswith("one step") and out["frame_shape"] == [1, 16, 16, 3] and out["frame_finite"]
    assert (out["image_tokens"], out["text_tokens"], out["size"]) == (16, 333, 16)
    assert min(out["transformer_s"], out["vae_decode_s"], out["dual_block_s"], out["block_s"]) >= 0
    assert "smoke" in out["real_size"]
    block = fullsize.run_sd35(fullsize.SMOKE_CONFIGS["sd35"], one_block=True)
    assert block["mode"] == "one block: asked for (--one-block)" and "one_step_s" not in block
    assert block["transformer_parameters"] == out["transformer_parameters"] > 0


def test_the_sd35_fullsize_entry_is_one_of_make_test_fullsize() -> None:
    fullsize = _fullsize()
    assert fullsize.MODELS == ("sd15", "sdxl", "karlo", "sd35")
    with pytest.raises(SystemExit):
        fullsize.main(["--only", "sd3"])  # argparse: not a choice
