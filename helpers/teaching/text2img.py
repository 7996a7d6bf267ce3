"""The teaching text-to-image model: a tiny latent diffusion model that is a stock ``StableDiffusionPipeline``.

Introduced in notebook 01_diffusion_basics and driven by notebook 04_prompt_walks through the same code as
Stable Diffusion 1.5. Every part is a stock diffusers/transformers class, trained here on CPU:

* ``AutoencoderKL``: 32x32x3 images in [-1, 1] ↔ 8x8x4 latents (``scaling_factor`` gives latents unit std);
* ``CLIPTokenizer`` built by :mod:`helpers.tokenizer` from the captions, and a small ``CLIPTextModel``;
* ``UNet2DConditionModel`` conditioned by cross-attention on the prompt embeddings;
* ``DDIMScheduler``.

The text encoder is trained jointly with the UNet, with the empty prompt in place of the caption
``prompt_dropout`` of the time, so classifier-free guidance works (``DEFAULT_GUIDANCE`` measured best).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

NAME = "teaching-digits"
IMAGE_SIZE = 32
LATENT_SIZE = 8
LATENT_CHANNELS = 4
MAX_TOKENS = 8
TEXT_DIM = 64
# Measured with `python -m helpers.teaching.text2img --measure` on the shipped weights (see README.md).
DEFAULT_GUIDANCE = 4.0
DEFAULT_STEPS = 20


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_text2img` (the defaults are what ships)."""

    seed: int = 0
    vae_steps: int = 600
    vae_batch: int = 32
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-4
    unet_steps: int = 2500
    unet_batch: int = 96
    unet_lr: float = 1e-3
    warmup: int = 100
    prompt_dropout: float = 0.15
    ema_decay: float = 0.999


SMOKE = TrainConfig(vae_steps=3, vae_batch=8, unet_steps=3, unet_batch=8, warmup=1)


def build_tokenizer() -> CLIPTokenizer:
    """The captions' CLIP tokenizer (every caption word is one token), ``model_max_length=MAX_TOKENS``."""
    from helpers.teaching.data import CAPTIONS
    from helpers.tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(CAPTIONS, model_max_length=MAX_TOKENS)


def build_vae() -> AutoencoderKL:
    """An untrained ``AutoencoderKL``: 32x32x3 → 8x8x4 (three encoder blocks, two downsamplings)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=IMAGE_SIZE,
    )


def build_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """An untrained two-layer ``CLIPTextModel`` sized to ``tokenizer``."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=2 * TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def build_unet() -> UNet2DConditionModel:
    """An untrained ``UNet2DConditionModel`` on 8x8x4 latents, cross-attention at 4x4 and in the middle."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=16,
        attention_head_dim=4,
        cross_attention_dim=TEXT_DIM,
    )


def build_scheduler():
    """The pipeline's ``DDIMScheduler`` (cosine betas, no clipping; its noise levels are also used to train).

    Timesteps are spaced "leading" (20 steps: 951, 901, …, 1), as in Stable Diffusion. "trailing" would start
    at t = 999, where the capped cosine schedule leaves ᾱ ≈ 1e-8: the ε → x0 step divides by √ᾱ there and
    blows the latents up ~1000x.
    """
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="leading",
    )


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, mininterval=1.0)


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return f


def train_vae(images: torch.Tensor, cfg: TrainConfig, *, progress: bool = True) -> AutoencoderKL:
    """Train the autoencoder on ``images`` (N, 3, 32, 32) in [0, 1]; set ``scaling_factor`` to 1/std(latents)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    vae = build_vae().train()
    x_all = images * 2 - 1
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(min(cfg.warmup, cfg.vae_steps), cfg.vae_steps))
    bar = _progress(cfg.vae_steps, "vae", progress)
    for _ in range(cfg.vae_steps):
        x = x_all[torch.randint(len(x_all), (cfg.vae_batch,), generator=gen)]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        recon = vae.decode(z).sample
        rec = F.mse_loss(recon, x)
        kl = post.kl().mean() / post.mean[0].numel()
        loss = rec + cfg.vae_kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.update()
        bar.set_postfix(mse=f"{rec.item():.4f}", refresh=False)
    bar.close()
    vae.eval()
    with torch.no_grad():
        std = float(vae.encode(x_all).latent_dist.mean.std())
    vae.register_to_config(scaling_factor=1.0 / max(std, 1e-6))
    return vae


def _encode_latents(vae: AutoencoderKL, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        post = vae.encode(images * 2 - 1).latent_dist
    s = vae.config.scaling_factor
    return post.mean * s, post.std * s


def train_unet(
    vae: AutoencoderKL,
    tokenizer: CLIPTokenizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
    *,
    progress: bool = True,
) -> tuple[UNet2DConditionModel, CLIPTextModel, list[float]]:
    """Train the UNet and the text encoder jointly (epsilon prediction, prompt dropout, EMA weights)."""
    from diffusers.training_utils import EMAModel

    from helpers.teaching.data import CAPTIONS

    gen = torch.Generator().manual_seed(cfg.seed + 1)
    torch.manual_seed(cfg.seed + 1)
    unet, text_encoder = build_unet().train(), build_text_encoder(tokenizer).train()
    scheduler = build_scheduler()
    mean, std = _encode_latents(vae, images)
    prompts = list(CAPTIONS) + [""]
    ids = tokenizer(prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
    ids = ids.input_ids
    empty = len(CAPTIONS)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(min(cfg.warmup, cfg.unet_steps), cfg.unet_steps))
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    alphas = scheduler.alphas_cumprod
    losses: list[float] = []
    bar = _progress(cfg.unet_steps, "unet+text", progress)
    for _ in range(cfg.unet_steps):
        idx = torch.randint(len(mean), (cfg.unet_batch,), generator=gen)
        z0 = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)
        rows = labels[idx].clone()
        rows[torch.rand(cfg.unet_batch, generator=gen) < cfg.prompt_dropout] = empty
        t = torch.randint(scheduler.config.num_train_timesteps, (cfg.unet_batch,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        cond = text_encoder(ids[rows])[0]
        loss = F.mse_loss(unet(zt, t, encoder_hidden_states=cond).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        ema.step(params)
        losses.append(loss.item())
        bar.update()
        bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}", refresh=False)
    bar.close()
    ema.copy_to(params)
    return unet.eval(), text_encoder.eval(), losses


def assemble_pipeline(vae, text_encoder, tokenizer, unet, scheduler=None) -> StableDiffusionPipeline:
    """A stock ``StableDiffusionPipeline`` from the parts (no safety checker, no feature extractor)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler if scheduler is not None else build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_pipeline(pipe: StableDiffusionPipeline, out_dir: str | Path) -> Path:
    """``save_pretrained`` (safetensors) into a temporary sibling folder, then swap it into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        os.chmod(tmp, 0o755)
        for path in tmp.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def train_text2img(
    out_dir: str | Path, *, smoke: bool = False, seed: int = 0, progress: bool = True
) -> StableDiffusionPipeline:
    """Train the whole teaching text-to-image model from scratch and save it to ``out_dir``.

    ``smoke=True`` runs the same code for a few steps (CI). Used by ``python -m helpers.teaching.train``.
    """
    from helpers.teaching.data import load_split

    torch.set_flush_denormal(True)
    cfg = replace(SMOKE if smoke else TrainConfig(), seed=seed)
    train = load_split("train", size=IMAGE_SIZE)
    tokenizer = build_tokenizer()
    t0 = time.perf_counter()
    vae = train_vae(train.images, cfg, progress=progress)
    t1 = time.perf_counter()
    unet, text_encoder, _ = train_unet(vae, tokenizer, train.images, train.labels, cfg, progress=progress)
    t2 = time.perf_counter()
    if progress:
        print(f"  vae {t1 - t0:.0f} s, unet+text encoder {t2 - t1:.0f} s")
    pipe = assemble_pipeline(vae, text_encoder, tokenizer, unet)
    save_pipeline(pipe, out_dir)
    return pipe


@torch.no_grad()
def sample_digits(
    pipe: StableDiffusionPipeline,
    prompts: list[str],
    *,
    guidance_scale: float = DEFAULT_GUIDANCE,
    num_inference_steps: int = DEFAULT_STEPS,
    seed: int = 0,
    latents: torch.Tensor | None = None,
) -> torch.Tensor:
    """Render ``prompts`` in one batch → (N, 3, 32, 32) float in [0, 1]; noise drawn on the CPU from ``seed``.

    Introduced in notebook 01_diffusion_basics.
    """
    if latents is None:
        gen = torch.Generator("cpu").manual_seed(seed)
        latents = torch.randn((len(prompts), LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE), generator=gen)
    out = pipe(
        prompt=list(prompts),
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        latents=latents.to(pipe.device, pipe.unet.dtype),
        output_type="pt",
    )
    return out.images.float().cpu()


def measure_quality(
    pipe: StableDiffusionPipeline,
    guidance_scales=(1.0, 2.0, 3.0, 4.0, 5.0, 7.5),
    *,
    per_digit: int = 32,
    seed: int = 0,
    classifier=None,
) -> dict[float, list[float]]:
    """Per-digit accuracy of :class:`~helpers.teaching.data.DigitClassifier` on samples, per guidance scale."""
    from helpers.teaching.data import CAPTIONS, DigitClassifier

    clf = classifier or DigitClassifier()
    prompts = [c for c in CAPTIONS for _ in range(per_digit)]
    labels = torch.arange(10).repeat_interleave(per_digit).numpy()
    result = {}
    for g in guidance_scales:
        pred = clf.predict(sample_digits(pipe, prompts, guidance_scale=g, seed=seed))
        result[float(g)] = [float((pred[labels == d] == d).mean()) for d in range(10)]
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m helpers.teaching.text2img --measure [DIR]``: accuracy per guidance scale."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("folder", nargs="?", default=None)
    args = parser.parse_args(argv)
    from diffusers import StableDiffusionPipeline

    from helpers.teaching import WEIGHTS_DIR

    torch.set_flush_denormal(True)
    folder = args.folder or str(WEIGHTS_DIR / NAME)
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    for g, acc in measure_quality(pipe).items():
        print(f"guidance {g:4.1f}: overall {sum(acc) / 10:.3f}  per digit " + " ".join(f"{a:.2f}" for a in acc))


if __name__ == "__main__":
    main()
