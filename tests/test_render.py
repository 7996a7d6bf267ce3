"""Embeddings, latents and batched rendering of interpolation paths on tiny pipelines (offline, CPU)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import slerp
from helpers.devices import make_generator
from helpers.embeddings import encode_images, encode_prompts, encode_text, latent_shape, make_latents
from helpers.pipelines import tiny_pipeline
from helpers.render import auto_batch_size, frame_bytes_estimate, render_frames

SD_STEPS = dict(num_inference_steps=2)
UNCLIP_STEPS = dict(decoder_num_inference_steps=2, super_res_num_inference_steps=2)
T5 = np.linspace(0.0, 1.0, 5, dtype=np.float32)


@pytest.fixture(scope="module")
def sd():
    return tiny_pipeline("text2img")


@pytest.fixture(scope="module")
def unclip():
    return tiny_pipeline("unclip")


@pytest.fixture(scope="module")
def prompt_walk(sd):
    embeds, negative = encode_prompts(sd, ["a red cat", "a blue house"])
    return slerp(embeds[0], embeds[1], T5), negative[:1]


@pytest.fixture(scope="module")
def image_walk(unclip):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)) for _ in range(2)]
    embeds = encode_images(unclip, images)
    return slerp(embeds[0], embeds[1], T5)


# ------------------------------------------------------------------------------------------- embeddings


def test_encode_prompts_matches_the_text_encoder(sd):
    embeds, negative = encode_prompts(sd, ["a red cat", "a blue house", "a dog"], negative_prompt="blurry")
    assert (
        embeds.shape
        == negative.shape
        == (3, sd.tokenizer.model_max_length, sd.text_encoder.config.hidden_size)
    )
    ids = sd.tokenizer(
        ["a blue house", "blurry"], padding="max_length", max_length=16, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        reference = sd.text_encoder(ids)[0]
    torch.testing.assert_close(embeds[1], reference[0])
    torch.testing.assert_close(negative[2], reference[1])
    assert torch.equal(negative[0], negative[1])  # one negative prompt, repeated


def test_encode_prompts_errors(sd, unclip):
    with pytest.raises(ValueError, match="empty"):
        encode_prompts(sd, [])
    with pytest.raises(TypeError):
        encode_prompts(sd, [1, 2])
    with pytest.raises(ValueError, match="negative"):
        encode_prompts(sd, ["a", "b"], negative_prompt=["x", "y", "z"])
    with pytest.raises(TypeError, match="encode_images"):
        encode_prompts(unclip, ["a cat"])


def test_encode_text_is_the_projected_clip_embedding(unclip, sd):
    text = encode_text(unclip, ["a red cat", "a blue house"])
    assert text.shape == (2, unclip.text_encoder.config.projection_dim)
    ids = unclip.tokenizer(
        ["a blue house"], padding="max_length", max_length=16, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        torch.testing.assert_close(text[1:], unclip.text_encoder(ids).text_embeds)
    with pytest.raises(TypeError, match="WithProjection"):
        encode_text(sd, ["a cat"])


def test_encode_images_accepts_every_image_format(unclip, sd):
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    from_pil = encode_images(unclip, [Image.fromarray(x) for x in u8])
    assert from_pil.shape == (2, unclip.image_encoder.config.projection_dim)
    from_uint8 = encode_images(unclip, u8)
    from_float = encode_images(unclip, u8.astype(np.float32) / 255)
    from_tensor = encode_images(unclip, torch.from_numpy(u8).permute(0, 3, 1, 2) / 255.0)
    single = encode_images(unclip, Image.fromarray(u8[1]))
    for other in (from_uint8, from_float, from_tensor):
        torch.testing.assert_close(other, from_pil)
    torch.testing.assert_close(single[0], from_pil[1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encode_images(unclip, u8.astype(np.float32))  # 0..255 floats
    with pytest.raises(TypeError, match="unCLIP"):
        encode_images(sd, u8)


def test_make_latents_shapes_and_seeds(sd, unclip):
    lat = make_latents(sd, [3, 5, 3])
    assert lat.shape == (3, 4, 16, 16) and lat.dtype == torch.float32
    assert torch.equal(lat[0], lat[2]) and not torch.equal(lat[0], lat[1])
    # row i is exactly a CPU generator seeded with seeds[i] (the device-independent reference)
    assert torch.equal(lat[1], torch.randn((4, 16, 16), generator=torch.Generator().manual_seed(5)))
    assert make_latents(sd, 0, height=64, width=48).shape == (1, 4, 32, 24)
    assert make_latents(sd, 0, dtype=torch.bfloat16).dtype == torch.bfloat16
    assert make_latents(unclip, [0, 1]).shape == (2, 3, 16, 16)
    assert make_latents(unclip, 0, kind="super_res").shape == (1, 3, 32, 32)
    assert latent_shape(unclip, kind="super_res") == (3, 32, 32)
    with pytest.raises(ValueError, match="multiple of 2"):
        make_latents(sd, 0, height=33)
    with pytest.raises(ValueError, match="fixed image size"):
        make_latents(unclip, 0, height=64)
    with pytest.raises(ValueError, match="empty"):
        make_latents(sd, [])
    with pytest.raises(TypeError, match="seed"):
        make_latents(sd, [0.5])


# -------------------------------------------------------------------------------------------- rendering


def test_prompt_walk_renders_and_matches_direct_calls(sd, prompt_walk):
    path, negative = prompt_walk
    latents = make_latents(sd, 0)
    frames = render_frames(
        sd, prompt_embeds=path, negative_prompt_embeds=negative, latents=latents, progress=False, **SD_STEPS
    )
    assert len(frames) == 5 and all(isinstance(f, Image.Image) and f.size == (32, 32) for f in frames)
    # the walk's endpoints are exactly what the pipeline gives for each prompt on its own
    for i in (0, 4):
        direct = sd(
            prompt_embeds=path[i : i + 1],
            negative_prompt_embeds=negative,
            latents=latents,
            output_type="np",
            **SD_STEPS,
        ).images[0]
        np.testing.assert_allclose(np.asarray(frames[i], dtype=np.float32) / 255, direct, atol=1 / 255 + 1e-6)
    # the path moves: successive frames differ, the ends differ most
    arrays = [np.asarray(f, dtype=np.float32) for f in frames]
    assert np.abs(arrays[4] - arrays[0]).mean() > np.abs(arrays[1] - arrays[0]).mean() > 0


def test_prompt_walk_chunked_equals_one_at_a_time(sd, prompt_walk):
    path, negative = prompt_walk
    kwargs = dict(
        prompt_embeds=path, negative_prompt_embeds=negative, seed=1, progress=False, output_type="np"
    )
    chunked = render_frames(sd, batch_size=2, **kwargs, **SD_STEPS)
    single = render_frames(sd, batch_size=1, **kwargs, **SD_STEPS)
    assert chunked.shape == (5, 32, 32, 3)
    np.testing.assert_allclose(chunked, single, atol=1e-4)
    # also with a stochastic sampler (DDIM eta = 1 adds noise at every step)
    chunked = render_frames(sd, batch_size=2, eta=1.0, **kwargs, **SD_STEPS)
    single = render_frames(sd, batch_size=1, eta=1.0, **kwargs, **SD_STEPS)
    np.testing.assert_allclose(chunked, single, atol=1e-4)


def test_prompt_walk_same_seed_same_frames(sd, prompt_walk):
    path, negative = prompt_walk
    kwargs = dict(prompt_embeds=path, negative_prompt_embeds=negative, progress=False, output_type="np")
    a = render_frames(sd, seed=7, **kwargs, **SD_STEPS)
    b = render_frames(sd, generator=make_generator(7), **kwargs, **SD_STEPS)
    c = render_frames(sd, seed=8, **kwargs, **SD_STEPS)
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3


def test_default_latents_are_make_latents_of_the_seed(sd, prompt_walk):
    path, negative = prompt_walk
    kwargs = dict(prompt_embeds=path[:2], negative_prompt_embeds=negative, progress=False, output_type="np")
    drawn = render_frames(sd, seed=5, eta=1.0, **kwargs, **SD_STEPS)  # eta = 1: step noise matters too
    given = render_frames(sd, seed=5, latents=make_latents(sd, 5), eta=1.0, **kwargs, **SD_STEPS)
    assert np.array_equal(drawn, given)


def test_default_negative_is_the_empty_prompt(sd, prompt_walk):
    path, _ = prompt_walk
    _, empty = encode_prompts(sd, [""])
    a = render_frames(sd, prompt_embeds=path[:2], seed=0, progress=False, output_type="np", **SD_STEPS)
    b = render_frames(
        sd,
        prompt_embeds=path[:2],
        negative_prompt_embeds=empty,
        seed=0,
        progress=False,
        output_type="np",
        **SD_STEPS,
    )
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_image_walk_renders_chunk_invariant(unclip, image_walk):
    kwargs = dict(image_embeddings=image_walk, seed=2, progress=False, output_type="np")
    chunked = render_frames(unclip, batch_size=2, **kwargs, **UNCLIP_STEPS)
    single = render_frames(unclip, batch_size=1, **kwargs, **UNCLIP_STEPS)
    assert chunked.shape == (5, 32, 32, 3) and 0 <= chunked.min() <= chunked.max() <= 1
    np.testing.assert_allclose(chunked, single, atol=5e-4)


def test_image_walk_step_noise_is_per_frame(unclip, image_walk):
    """With one shared generator (diffusers' default) a frame's noise depends on its batch neighbours."""
    lat = make_latents(unclip, 0)
    srl = make_latents(unclip, 1, kind="super_res")
    shared = dict(decoder_latents=lat.expand(5, -1, -1, -1), super_res_latents=srl.expand(5, -1, -1, -1))
    batch = unclip(
        image_embeddings=image_walk, generator=make_generator(0), output_type="np", **shared, **UNCLIP_STEPS
    )
    alone = unclip(
        image_embeddings=image_walk[2:3],
        generator=make_generator(0),
        decoder_latents=lat,
        super_res_latents=srl,
        output_type="np",
        **UNCLIP_STEPS,
    )
    assert np.abs(batch.images[2] - alone.images[0]).mean() > 0.03  # diffusers' default: not chunk invariant
    ours = render_frames(
        unclip,
        image_embeddings=image_walk,
        latents=lat,
        super_res_latents=srl,
        progress=False,
        output_type="np",
        **UNCLIP_STEPS,
    )
    ours_alone = render_frames(
        unclip,
        image_embeddings=image_walk[2:3],
        latents=lat,
        super_res_latents=srl,
        progress=False,
        output_type="np",
        **UNCLIP_STEPS,
    )
    np.testing.assert_allclose(ours[2], ours_alone[0], atol=5e-4)


def test_identical_rows_give_identical_frames(unclip, image_walk):
    """Every frame sees the same noise sequence: a constant path renders a still picture (no flicker)."""
    still = image_walk[1:2].expand(4, -1)
    frames = render_frames(
        unclip, image_embeddings=still, batch_size=4, seed=0, progress=False, output_type="np", **UNCLIP_STEPS
    )
    for frame in frames[1:]:
        np.testing.assert_allclose(frame, frames[0], atol=5e-4)


def test_image_walk_same_seed_same_frames(unclip, image_walk):
    kwargs = dict(image_embeddings=image_walk, progress=False, output_type="np", **UNCLIP_STEPS)
    a = render_frames(unclip, seed=3, **kwargs)
    b = render_frames(unclip, seed=3, **kwargs)
    c = render_frames(unclip, seed=4, **kwargs)
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 0.03
    pil = render_frames(unclip, image_embeddings=image_walk[:2], seed=3, progress=False, **UNCLIP_STEPS)
    # PIL frames are the same pictures in uint8 (one level of rounding: this was a 2-frame batch)
    assert np.abs(np.asarray(pil[1], dtype=np.float32) - np.round(a[1] * 255)).max() <= 1


def test_progress_bar_counts_frames(sd, prompt_walk, capsys):
    path, negative = prompt_walk
    render_frames(
        sd, prompt_embeds=path, negative_prompt_embeds=negative, batch_size=2, progress=True, **SD_STEPS
    )
    err = capsys.readouterr().err
    counts = [int(n) for n in re.findall(r"(\d+)/5 \[", err)]  # the bar counts frames (of 5), then is cleared
    assert counts and max(counts) >= 4 and counts == sorted(counts) and "frame" in err
    assert sd._progress_bar_config == {"disable": True}  # the pipeline's own bar settings are restored


# ----------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_clear_errors(sd, unclip, prompt_walk, image_walk):
    path, negative = prompt_walk
    ok = dict(progress=False, **SD_STEPS)
    with pytest.raises(ValueError, match="needs prompt_embeds"):
        render_frames(sd, **ok)
    with pytest.raises(ValueError, match="not image_embeddings"):
        render_frames(sd, prompt_embeds=path, image_embeddings=image_walk, **ok)
    with pytest.raises(ValueError, match="needs image_embeddings"):
        render_frames(unclip, progress=False)
    with pytest.raises(ValueError, match="not prompt_embeds"):
        render_frames(unclip, prompt_embeds=path, image_embeddings=image_walk, progress=False)
    with pytest.raises(ValueError, match="3 rows but the path has 5 frames"):
        render_frames(sd, prompt_embeds=path, latents=make_latents(sd, [0, 1, 2]), **ok)
    with pytest.raises(ValueError, match="2 rows but the path has 5"):
        render_frames(sd, prompt_embeds=path, negative_prompt_embeds=negative.expand(2, -1, -1), **ok)
    with pytest.raises(ValueError, match="at least 1 frame"):
        render_frames(sd, prompt_embeds=path[:0], **ok)
    bad = path.clone()
    bad[2, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        render_frames(sd, prompt_embeds=bad, **ok)
    with pytest.raises(ValueError, match=r"\(N, seq, dim\)"):
        render_frames(sd, prompt_embeds=path[0], **ok)
    with pytest.raises(ValueError, match="latents must be"):
        render_frames(sd, prompt_embeds=path, latents=torch.zeros(5, 4, 8, 8), **ok)
    with pytest.raises(TypeError, match="torch.Tensor"):
        render_frames(sd, prompt_embeds=path.numpy(), **ok)
    with pytest.raises(ValueError, match="batch_size"):
        render_frames(sd, prompt_embeds=path, batch_size=0, **ok)
    with pytest.raises(ValueError, match="either generator= or seed="):
        render_frames(sd, prompt_embeds=path, seed=0, generator=make_generator(0), **ok)
    with pytest.raises(TypeError, match="one torch.Generator"):
        render_frames(sd, prompt_embeds=path, generator=[make_generator(0)], **ok)
    with pytest.raises(TypeError, match="sets"):
        render_frames(sd, prompt_embeds=path, prompt="a cat", **ok)
    with pytest.raises(ValueError, match="must be a whole number from 2 to 1000"):
        render_frames(unclip, image_embeddings=image_walk, decoder_num_inference_steps=1, progress=False)
    with pytest.raises(TypeError, match="neither"):
        render_frames(object())


def test_auto_batch_size():
    assert auto_batch_size(None, 10**9) == 8
    assert auto_batch_size(10 * 2**30, 2**30) == 7  # 75% of 10 GiB at 1 GiB per frame
    assert auto_batch_size(100 * 2**30, 2**30) == 8  # capped
    assert auto_batch_size(100 * 2**30, 2**30, cap=16) == 16
    assert auto_batch_size(2**20, 2**30) == 1  # never below one frame
    assert (
        frame_bytes_estimate(512, 512, torch.float16)
        == 2 * frame_bytes_estimate(512, 512, torch.bfloat16) // 2
    )
    assert frame_bytes_estimate(512, 512, torch.float32) == 2 * frame_bytes_estimate(512, 512, torch.float16)
    with pytest.raises(ValueError):
        auto_batch_size(2**30, 0)


# ------------------------------------------------------------------------------- speed: batching, SDPA


def test_guidance_and_vae_decoding_run_batched(sd, prompt_walk):
    """One UNet call per step carries the negative and positive rows of every frame in the chunk, and the
    VAE decodes the whole chunk at once: counted with forward hooks on the real modules."""
    path, negative = prompt_walk
    unet_batches, vae_batches = [], []
    hooks = [
        sd.unet.register_forward_pre_hook(lambda m, args: unet_batches.append(args[0].shape[0])),
        sd.vae.decoder.register_forward_pre_hook(lambda m, args: vae_batches.append(args[0].shape[0])),
    ]
    try:
        render_frames(
            sd, prompt_embeds=path[:4], negative_prompt_embeds=negative, batch_size=4, guidance_scale=3.0,
            progress=False, **SD_STEPS,
        )
    finally:
        for h in hooks:
            h.remove()
    assert unet_batches == [8, 8]  # 2 steps x (4 negative + 4 positive rows)
    assert vae_batches == [4]


def test_attention_is_pytorch_sdpa_by_default(sd, unclip):
    from diffusers.models.attention_processor import AttnProcessor

    from helpers.render import attention_processors, speed_options, uses_sdpa

    assert uses_sdpa(sd) and uses_sdpa(unclip)
    assert set(attention_processors(sd)) == {"AttnProcessor2_0"}
    assert "attention: PyTorch SDPA" in speed_options(sd)[0]
    fresh = tiny_pipeline("text2img")
    fresh.unet.set_attn_processor(AttnProcessor())  # the classic processor: plain matmul + softmax
    assert not uses_sdpa(fresh)
    assert "not all SDPA" in speed_options(fresh)[0]


def test_cuda_speed_options_are_noops_on_the_cpu(sd):
    from helpers.render import free_memory_bytes, speed_options

    unet = sd.unet
    notes = speed_options(sd, compile=True, channels_last=True)
    assert any("skipped on cpu" in n for n in notes)
    assert sd.unet is unet  # not wrapped by torch.compile
    assert free_memory_bytes("cpu") is None


def test_free_memory_respects_a_per_process_cap(monkeypatch):
    """With torch.cuda.set_per_process_memory_fraction the driver's free memory overstates what torch may use."""
    from helpers.render import free_memory_bytes

    gib = 2**30
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * gib, 16 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 1 * gib)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device=None: 1.0)
    assert free_memory_bytes("cuda") == 10 * gib  # no cap: what the driver says
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device=None: 0.25)
    assert free_memory_bytes("cuda") == 3 * gib  # a 4 GiB cap with 1 GiB already reserved
