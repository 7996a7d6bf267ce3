"""The shipped teaching text-to-image model: a stock StableDiffusionPipeline that draws the prompted digit.

Quality is judged by an independent digit classifier (logistic regression on the real training digits).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.teaching import WEIGHTS_DIR, load_teaching_pipeline
from helpers.teaching.data import CAPTIONS, DigitClassifier, load_split
from helpers.teaching.text2img import DEFAULT_GUIDANCE, DEFAULT_STEPS, sample_digits

PER_DIGIT = 32
WALK_FRAMES = 9
WALK_SEEDS = 10


@pytest.fixture(scope="module")
def pipe():
    torch.set_flush_denormal(True)
    p = load_teaching_pipeline("teaching-digits", device="cpu")
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def classifier():
    return DigitClassifier()


def test_is_a_stock_pipeline_of_trained_parts(pipe):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    assert type(pipe) is StableDiffusionPipeline
    assert isinstance(pipe.vae, AutoencoderKL) and isinstance(pipe.unet, UNet2DConditionModel)
    assert isinstance(pipe.text_encoder, CLIPTextModel) and isinstance(pipe.tokenizer, CLIPTokenizer)
    assert isinstance(pipe.scheduler, DDIMScheduler)
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    # every caption word is a single token: BOS + 3 words + EOS
    for c in CAPTIONS:
        assert len(pipe.tokenizer(c).input_ids) == 5


def test_weights_are_small_safetensors():
    folder = WEIGHTS_DIR / "teaching-digits"
    files = list(folder.rglob("*"))
    assert not [f for f in files if f.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    weights = [f for f in files if f.suffix == ".safetensors"]
    assert len(weights) == 3  # vae, text encoder, unet
    assert sum(f.stat().st_size for f in weights) <= 6.5e6


def test_vae_round_trip_keeps_digits_and_latents_have_unit_std(pipe, classifier):
    held = load_split("held_out")
    with torch.no_grad():
        lat = pipe.vae.encode(held.images * 2 - 1).latent_dist.mean * pipe.vae.config.scaling_factor
        recon = (pipe.vae.decode(lat / pipe.vae.config.scaling_factor).sample + 1) / 2
    assert 0.8 < float(lat.std()) < 1.25
    assert float(((recon.clamp(0, 1) - held.images) ** 2).mean()) < 0.01
    assert (classifier.predict(recon.clamp(0, 1)) == held.labels.numpy()).mean() >= 0.9


def test_every_prompt_draws_its_digit(pipe, classifier):
    prompts = [c for c in CAPTIONS for _ in range(PER_DIGIT)]
    images = sample_digits(pipe, prompts, guidance_scale=DEFAULT_GUIDANCE, num_inference_steps=20, seed=0)
    assert images.shape == (10 * PER_DIGIT, 3, 32, 32)
    labels = np.repeat(np.arange(10), PER_DIGIT)
    correct = classifier.predict(images) == labels
    per_digit = correct.reshape(10, PER_DIGIT).mean(axis=1)
    assert correct.mean() >= 0.9, f"overall {correct.mean():.3f}, per digit {per_digit.round(2)}"
    assert per_digit.min() >= 0.75, f"per digit {per_digit.round(2)}"


def test_same_seed_same_images(pipe):
    a = sample_digits(pipe, ["a handwritten five"] * 2, seed=3, num_inference_steps=DEFAULT_STEPS)
    b = sample_digits(pipe, ["a handwritten five"] * 2, seed=3, num_inference_steps=DEFAULT_STEPS)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # different noise within the batch


def test_prompt_walk_three_to_eight(pipe, classifier):
    from helpers import slerp

    with torch.no_grad():
        three, eight, empty = pipe.encode_prompt(
            ["a handwritten three", "a handwritten eight", ""], "cpu", 1, False
        )[0].split(1)
    path = slerp(three[0], eight[0], np.linspace(0, 1, WALK_FRAMES).tolist())  # (9, tokens, dim)
    assert torch.allclose(path[0], three[0], atol=1e-5) and torch.allclose(path[-1], eight[0], atol=1e-5)
    gen = torch.Generator("cpu")
    noise = torch.cat([torch.randn((1, 4, 8, 8), generator=gen.manual_seed(s)) for s in range(WALK_SEEDS)])
    latents = noise.repeat_interleave(WALK_FRAMES, dim=0)  # fixed noise along each walk
    embeds = path.repeat(WALK_SEEDS, 1, 1)
    with torch.no_grad():
        images = pipe(
            prompt_embeds=embeds,
            negative_prompt_embeds=empty.expand_as(embeds),
            latents=latents,
            num_inference_steps=DEFAULT_STEPS,
            guidance_scale=DEFAULT_GUIDANCE,
            output_type="pt",
        ).images
    p8 = classifier.predict_proba(images)[:, 8].reshape(WALK_SEEDS, WALK_FRAMES)
    good = (p8[:, 0] < 0.2) & (p8[:, -1] > 0.8)
    assert good.sum() >= 8, f"P(8) first {p8[:, 0].round(2)}, last {p8[:, -1].round(2)}"


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="teaching-digits"):
        load_teaching_pipeline("teaching-cats")
