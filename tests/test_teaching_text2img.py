"""The shipped teaching text-to-image model is a stock StableDiffusionPipeline of small trained parts.

Its quality and the lessons' effects are tested in ``test_teaching_quality.py`` (judged on ground truth).
"""

from __future__ import annotations

import pytest
import torch

from helpers.teaching import WEIGHTS_DIR, load_teaching_pipeline
from helpers.teaching import scenes as S
from helpers.teaching.text2img import sample


@pytest.fixture(scope="module")
def pipe():
    torch.set_flush_denormal(True)  # as training does; off again afterwards (hypothesis needs subnormals)
    p = load_teaching_pipeline("teaching", device="cpu")
    p.set_progress_bar_config(disable=True)
    yield p
    torch.set_flush_denormal(False)


def test_is_a_stock_pipeline_of_trained_parts(pipe):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    assert type(pipe) is StableDiffusionPipeline
    assert isinstance(pipe.vae, AutoencoderKL) and isinstance(pipe.unet, UNet2DConditionModel)
    assert isinstance(pipe.text_encoder, CLIPTextModel) and isinstance(pipe.tokenizer, CLIPTokenizer)
    assert isinstance(pipe.scheduler, DDIMScheduler)
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    # every caption word is one token, and the longest caption fits: BOS + words + EOS
    for c in ("a big red apple on a pink background", "a rain cloud", "a small cool face"):
        assert len(pipe.tokenizer(c).input_ids) == len(c.split()) + 2 <= pipe.tokenizer.model_max_length


def test_weights_are_small_safetensors():
    files = [f for f in WEIGHTS_DIR.rglob("*") if f.is_file()]
    assert not [f for f in files if f.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    # every teaching model together, the flow model included: issue 32's budget of 50 MB
    assert sum(f.stat().st_size for f in files if f.suffix == ".safetensors") <= 50e6


def test_latents_have_unit_std(pipe):
    x = S.load_split("held_out").images[:256]
    with torch.no_grad():
        lat = pipe.vae.encode(x * 2 - 1).latent_dist.mean * pipe.vae.config.scaling_factor
    assert lat.shape[1:] == (pipe.unet.config.in_channels, 8, 8)
    assert 0.8 < float(lat.std()) < 1.25


def test_same_seed_same_images(pipe):
    a = sample(pipe, ["a big cat face"] * 2, seed=3, num_inference_steps=10)
    b = sample(pipe, ["a big cat face"] * 2, seed=3, num_inference_steps=10)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # different noise within the batch


def test_unknown_and_retired_names_are_clear_errors():
    with pytest.raises(ValueError, match="teaching-unclip"):
        load_teaching_pipeline("teaching-cats")
    with pytest.raises(ValueError, match="'teaching'"):
        load_teaching_pipeline("teaching-digits")


@pytest.mark.parametrize("warmup,total", [(100, 3000), (100, 1200), (1, 3), (100, 40)])
def test_training_rates_are_the_model_cards_schedule(warmup, total):
    """Rate at step s: (s + 1)/W of the peak during the W warm-up steps, then 0.5(1 + cos(π(s − W)/(T − W))),
    the schedule the shipped weights were trained on (README). torch's LinearLR and CosineAnnealingLR compute it
    step by step, so agreement to 1e-12 is the test, and the warm-up never starts at 0."""
    import math

    from helpers.teaching.text2img import lr_schedule

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched, rates = lr_schedule(opt, warmup, total), []
    for _ in range(total):
        rates.append(opt.param_groups[0]["lr"] / 1e-3)
        opt.step()
        sched.step()
    w = min(warmup, total)
    want = [(s + 1) / w if s < w else 0.5 * (1 + math.cos(math.pi * (s - w) / max(1, total - w))) for s in range(total)]
    assert max(abs(a - b) for a, b in zip(rates, want)) < 1e-12
    assert rates[0] > 0 and max(rates) == pytest.approx(1.0)
