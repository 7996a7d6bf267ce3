"""The teaching text-to-image model: a tiny latent diffusion model that is a stock ``StableDiffusionPipeline``.

Introduced in notebook 01_diffusion_basics and driven by notebook 04_prompt_walks through the same code as
Stable Diffusion 1.5. It draws the emoji scenes of :mod:`helpers.teaching.scenes` ("a big red apple on a pink
background"). Every part is a stock diffusers/transformers class, trained here on CPU:

* ``AutoencoderKL``: 32x32x3 images in [-1, 1] ↔ 8x8x8 latents (``scaling_factor`` gives latents unit std);
* ``CLIPTokenizer`` built by :mod:`helpers.tokenizer` from the captions, and a small ``CLIPTextModel``;
* ``UNet2DConditionModel`` conditioned by cross-attention on the prompt embeddings;
* ``DDIMScheduler``.

The text encoder is trained jointly with the UNet, with the empty prompt in place of the caption
``prompt_dropout`` of the time, so classifier-free guidance works. Training captions leave out the size or the
background a quarter of the time each, so shorter prompts work and a negative prompt has something to push
against. The steps and guidance the backends use come from the model card ``card.json`` in the weights folder
(:func:`defaults`), written by ``python -m helpers.teaching.quality --write-card``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from helpers.teaching.scenes import load_split

if TYPE_CHECKING:
    # The defining modules: mypy resolves ``from diffusers import X`` to diffusers' dummy placeholder classes.
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import StableDiffusionPipeline
    from transformers import CLIPTextModel, CLIPTokenizer

NAME = "teaching"
IMAGE_SIZE = 32
LATENT_SIZE = 8
LATENT_CHANNELS = 8
MAX_TOKENS = 12
TEXT_DIM = 64
CARD = "card.json"
#: What the backends use when the shipped card cannot be read (a retrain in progress): the card's values.
FALLBACK_STEPS = 20
FALLBACK_GUIDANCE = 4.0


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the two training stages (the defaults are what ships)."""

    seed: int = 0
    vae_steps: int = 1200
    vae_batch: int = 32
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-5
    unet_steps: int = 3000
    unet_batch: int = 96
    unet_lr: float = 1e-3
    warmup: int = 100
    prompt_dropout: float = 0.15
    ema_decay: float = 0.999


SMOKE = TrainConfig(vae_steps=3, vae_batch=8, unet_steps=3, unet_batch=8, warmup=1)


def build_tokenizer() -> CLIPTokenizer:
    """The captions' CLIP tokenizer (every caption word is one token), ``model_max_length=MAX_TOKENS``."""
    from helpers.teaching.scenes import all_captions
    from helpers.tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(all_captions(), model_max_length=MAX_TOKENS)


def build_vae() -> AutoencoderKL:
    """An untrained ``AutoencoderKL``: 32x32x3 → 8x8x8 (three encoder blocks, two downsamplings)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(  # type: ignore[return-value]  # mypy sees diffusers' dummy class here
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=16,
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
    """An untrained ``UNet2DConditionModel`` on 8x8x8 latents, cross-attention at 8x8, 4x4 and in the middle."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(  # type: ignore[return-value]  # mypy sees diffusers' dummy class here
        sample_size=LATENT_SIZE,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        block_out_channels=(48, 96),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        norm_num_groups=16,
        attention_head_dim=8,
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


def progress_bar(total: int, desc: str, enabled: bool):
    """The trainings' tqdm bar (``enabled=False``: none), refreshed at most once a second."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, mininterval=1.0)


def lr_schedule(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    """torch's ``LinearLR`` warm-up from 1/``warmup`` of the rate to all of it over ``warmup`` steps, then its
    ``CosineAnnealingLR`` down to 0 at step ``total`` (one ``SequentialLR``). The shipped weights were trained on
    these rates; diffusers' ``get_cosine_schedule_with_warmup``, used by the other teaching models, starts its
    warm-up at 0, which is one step's difference and a different model here (``helpers/teaching/README.md``)."""
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    warmup = max(1, min(warmup, total))
    return SequentialLR(opt, [LinearLR(opt, 1 / warmup, 1.0, warmup - 1),
                              CosineAnnealingLR(opt, max(1, total - warmup))], [warmup])


def train_vae(images: torch.Tensor, cfg: TrainConfig, *, progress: bool = True) -> AutoencoderKL:
    """Train the autoencoder on ``images`` (N, 3, 32, 32) in [0, 1]; set ``scaling_factor`` to 1/std(latents)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    vae = build_vae().train()
    x_all = images * 2 - 1
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    sched = lr_schedule(opt, cfg.warmup, cfg.vae_steps)
    bar = progress_bar(cfg.vae_steps, "vae", progress)
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
    with torch.no_grad():  # 4,096 images pin the std to well under 1%
        std = float(vae.encode(x_all[:4096]).latent_dist.mean.std())
    vae.register_to_config(scaling_factor=1.0 / max(std, 1e-6))
    return vae


def encode_latents(vae: AutoencoderKL, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The scaled mean and standard deviation of the autoencoder's latent distribution for ``images`` in [0, 1]."""
    with torch.no_grad():
        posts = [vae.encode(chunk * 2 - 1).latent_dist for chunk in images.split(1024)]
    s = vae.config.scaling_factor  # type: ignore[attr-defined]  # a FrozenDict, typed as a plain dict
    return torch.cat([p.mean for p in posts]) * s, torch.cat([p.std for p in posts]) * s


def train_unet(
    vae: AutoencoderKL,
    tokenizer: CLIPTokenizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
    prompts: list[str],
    *,
    progress: bool = True,
) -> tuple[UNet2DConditionModel, CLIPTextModel, list[float]]:
    """Train the UNet and the text encoder jointly (epsilon prediction, prompt dropout, EMA weights).

    ``labels`` (N, K) index into ``prompts``: K caption variants per image, one drawn per step (the training
    captions with and without size and background); the empty prompt is appended here.
    """
    from diffusers.training_utils import EMAModel

    gen = torch.Generator().manual_seed(cfg.seed + 1)
    torch.manual_seed(cfg.seed + 1)
    unet, text_encoder = build_unet().train(), build_text_encoder(tokenizer).train()
    scheduler = build_scheduler()
    mean, std = encode_latents(vae, images)
    ids = tokenizer(list(prompts) + [""], padding="max_length", max_length=MAX_TOKENS, truncation=True,
                    return_tensors="pt").input_ids
    empty = len(prompts)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=1e-4)
    sched = lr_schedule(opt, cfg.warmup, cfg.unet_steps)
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    alphas = scheduler.alphas_cumprod
    losses: list[float] = []
    bar = progress_bar(cfg.unet_steps, "unet+text", progress)
    for _ in range(cfg.unet_steps):
        idx = torch.randint(len(mean), (cfg.unet_batch,), generator=gen)
        z0 = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)
        rows = caption_rows(labels, idx, empty, cfg.prompt_dropout, gen)
        t = torch.randint(scheduler.config.num_train_timesteps, (cfg.unet_batch,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        cond = text_encoder(ids[rows])[0]
        loss = F.mse_loss(unet(zt, t, encoder_hidden_states=cond).sample, noise)
        training_step(loss, params, opt, sched, ema, losses, bar)
    bar.close()
    ema.copy_to(params)
    return unet.eval(), text_encoder.eval(), losses


def caption_rows(labels: torch.Tensor, idx: torch.Tensor, empty: int, dropout: float,
                 gen: torch.Generator) -> torch.Tensor:
    """One caption per drawn scene (``labels[idx]``: one of its variants, at random), replaced by the empty
    prompt (index ``empty``) with probability ``dropout``: classifier-free guidance's training."""
    rows = labels[idx, torch.randint(labels.shape[1], (len(idx),), generator=gen)].clone()
    rows[torch.rand(len(idx), generator=gen) < dropout] = empty
    return rows


def training_step(loss: torch.Tensor, params: list, opt: torch.optim.Optimizer, sched: Any, ema: Any,
                  losses: list[float], bar: Any) -> None:
    """Backward, gradient clipping to 1.0, the optimizer and schedule steps, the EMA update, and the bar's
    running loss: one step of the text-to-image teaching models' trainings."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    ema.step(params)
    losses.append(loss.item())
    bar.update()
    bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}", refresh=False)


def assemble_pipeline(vae, text_encoder, tokenizer, unet, scheduler=None) -> StableDiffusionPipeline:
    """A stock ``StableDiffusionPipeline`` from the parts (no safety checker, no feature extractor)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(  # type: ignore[return-value]  # mypy sees diffusers' dummy class here
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


def caption_table(scene_set) -> tuple[list[str], torch.Tensor]:
    """The distinct training captions and, per scene, the indices of its caption variants (N, 16).

    The variants are drawn so that size and background are left out at the rates of
    :mod:`helpers.teaching.scenes` (``DROP_SIZE``, ``DROP_BACKGROUND``: 16 slots, 9 full captions, 3 without
    size, 3 without background, 1 with neither).
    """
    from helpers.teaching.scenes import all_captions

    prompts = all_captions()
    index = {p: i for i, p in enumerate(prompts)}
    slots = [(True, True)] * 9 + [(False, True)] * 3 + [(True, False)] * 3 + [(False, False)]
    rows = [[index[s.caption(size=a, background=b)] for a, b in slots] for s in scene_set.scenes]
    return prompts, torch.tensor(rows)


def training_split(smoke: bool):
    """The training scenes (``smoke=True``: the first 256 of them)."""
    train = load_split("train")
    return type(train)(train.scenes[:256], train.images[:256]) if smoke else train  # smoke: a few scenes


def train_autoencoder_stage(out_dir: str | Path, *, smoke: bool = False, seed: int = 0,
                            progress: bool = True) -> Path:
    """Training stage 1: the autoencoder alone, saved to ``out_dir`` (``save_pretrained``).

    ``smoke=True`` runs the same code for a few steps (CI). :mod:`helpers.teaching.train` runs the stages.
    """
    cfg = replace(SMOKE if smoke else TrainConfig(), seed=seed)
    vae = train_vae(training_split(smoke).images, cfg, progress=progress)
    vae.save_pretrained(out_dir)
    return Path(out_dir)


def train_denoiser_stage(autoencoder_dir: str | Path, out_dir: str | Path, *, smoke: bool = False, seed: int = 0,
                         progress: bool = True) -> Path:
    """Training stage 2: the UNet and text encoder on the latents of stage 1's autoencoder; the whole
    ``StableDiffusionPipeline`` is saved to ``out_dir`` (swapped in whole, never half-written)."""
    from diffusers import AutoencoderKL

    cfg = replace(SMOKE if smoke else TrainConfig(), seed=seed)
    train = training_split(smoke)
    prompts, labels = caption_table(train)
    tokenizer = build_tokenizer()
    vae = AutoencoderKL.from_pretrained(autoencoder_dir)
    unet, text_encoder, _ = train_unet(vae, tokenizer, train.images, labels, cfg, prompts, progress=progress)
    return save_pipeline(assemble_pipeline(vae, text_encoder, tokenizer, unet), out_dir)


def defaults(folder: str | Path | None = None) -> dict:
    """The model card's settings: ``{"steps", "guidance_scale", "height", "width"}`` (what the backends use).

    Read from ``card.json`` in the weights folder, which ``python -m helpers.teaching.quality --write-card``
    writes with the accuracy per guidance scale it measured; ``FALLBACK_*`` only while no card is there.
    Introduced in notebook 01_diffusion_basics.
    """
    from helpers.teaching.common import WEIGHTS_DIR

    return card_settings(Path(folder or WEIGHTS_DIR / NAME) / CARD, FALLBACK_STEPS, FALLBACK_GUIDANCE)


def card_settings(path: Path, steps: int, guidance: float) -> dict:
    """``{"steps", "guidance_scale", "height", "width"}`` from the card at ``path`` (``steps``/``guidance`` while
    there is none): what the text-to-image teaching models' ``defaults()`` return."""
    import json

    card = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {
        "steps": int(card.get("steps", steps)),
        "guidance_scale": float(card.get("guidance_scale", guidance)),
        "height": IMAGE_SIZE,
        "width": IMAGE_SIZE,
    }


@torch.no_grad()
def sample(
    pipe: StableDiffusionPipeline,
    prompts: list[str],
    *,
    guidance_scale: float | None = None,
    num_inference_steps: int | None = None,
    seed: int = 0,
    latents: torch.Tensor | None = None,
    negative_prompt: str | list[str] | None = None,
) -> torch.Tensor:
    """Render ``prompts`` in one batch → (N, 3, 32, 32) float in [0, 1]; noise drawn on the CPU from ``seed``.

    Steps and guidance default to the model card's. Introduced in notebook 01_diffusion_basics.
    """
    from helpers.pipeline_info import family, model_dtype, t5_tokens

    card = defaults()
    if latents is None:
        gen = torch.Generator("cpu").manual_seed(seed)
        latents = torch.randn((len(prompts), LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE), generator=gen)
    if isinstance(negative_prompt, str):
        negative_prompt = [negative_prompt] * len(prompts)
    extra = {"max_sequence_length": t5_tokens(pipe)} if family(pipe) == "sd3" else {}  # the flow model's tokens
    out = pipe(
        prompt=list(prompts),
        negative_prompt=negative_prompt,
        num_inference_steps=num_inference_steps or card["steps"],
        guidance_scale=card["guidance_scale"] if guidance_scale is None else guidance_scale,
        latents=latents.to(pipe.device, model_dtype(pipe)),
        output_type="pt",
        **extra,
    )
    return out.images.float().cpu()
