"""The teaching flow model: a small SD 3-style MMDiT trained by rectified flow on the emoji scenes.

Introduced in notebook 10_flow_matching. A stock ``StableDiffusion3Pipeline``: the teaching model's autoencoder
(8x8x8 latents, shared with :mod:`helpers.teaching.text2img`), two small CLIP text encoders with projections
(their penultimate hidden states side by side are the tokens, their projected end-of-text embeddings side by
side the pooled embedding), no T5 (SD 3 allows it: its tokens are then zeros), an ``SD3Transformer2DModel``
and diffusers' ``FlowMatchEulerDiscreteScheduler``.

Training (:func:`train_transformer`), diffusers' conventions: x_σ = (1 − σ)·x₀ + σ·ε with noise at σ = 1, the
network predicts the velocity ε − x₀, σ drawn from a logit-normal density (the SD 3 paper's choice, through
``diffusers.training_utils.compute_density_for_timestep_sampling``), prompt dropout for classifier-free
guidance, EMA weights; the text encoders learn jointly with the transformer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from helpers.teaching.text2img import (
    LATENT_CHANNELS,
    LATENT_SIZE,
    MAX_TOKENS,
    TEXT_DIM,
    build_tokenizer,
    caption_rows,
    caption_table,
    lr_schedule,
    progress_bar,
    save_pipeline,
    training_split,
    training_step,
)

NAME = "teaching-flow"
CARD = "card.json"
#: Settings while no card has been measured (``python -m helpers.teaching.quality --flow --write-card``).
FALLBACK_STEPS = 8
FALLBACK_GUIDANCE = 3.0
#: T5 tokens of the prompt embeddings: none (no T5; its tokenizer is kept only to say so, see below).
T5_TOKENS = 1
#: The transformer's width (heads x head size), its depth and the text encoders' projection.
WIDTH = 128
HEADS = 4
LAYERS = 6
PROJECTION = 64


@dataclass(frozen=True)
class FlowTrainConfig:
    """Hyper-parameters of the transformer stage (the defaults are what ships)."""

    seed: int = 0
    steps: int = 3000
    batch: int = 96
    lr: float = 1e-3
    warmup: int = 100
    prompt_dropout: float = 0.15
    ema_decay: float = 0.999
    logit_mean: float = 0.0
    logit_std: float = 1.0
    layers: int = LAYERS
    width: int = WIDTH
    patch_size: int = 1


SMOKE = FlowTrainConfig(steps=3, batch=8, warmup=1)


def build_text_encoders(tokenizer: Any) -> tuple[Any, Any]:
    """Two untrained two-layer ``CLIPTextModelWithProjection`` encoders sized to ``tokenizer``."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    def one() -> Any:
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=2 * TEXT_DIM, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=MAX_TOKENS, projection_dim=PROJECTION,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id))

    return one(), one()


def build_transformer(cfg: FlowTrainConfig = FlowTrainConfig()) -> Any:
    """An untrained ``SD3Transformer2DModel`` on the 8x8x8 latents: tokens of ``2 x TEXT_DIM`` (both CLIPs side
    by side), a pooled embedding of ``2 x PROJECTION``."""
    from diffusers import SD3Transformer2DModel

    return SD3Transformer2DModel(sample_size=LATENT_SIZE, patch_size=cfg.patch_size, in_channels=LATENT_CHANNELS,
                                 out_channels=LATENT_CHANNELS, num_layers=cfg.layers,
                                 attention_head_dim=cfg.width // HEADS, num_attention_heads=HEADS,
                                 joint_attention_dim=2 * TEXT_DIM, caption_projection_dim=cfg.width,
                                 pooled_projection_dim=2 * PROJECTION, pos_embed_max_size=LATENT_SIZE)


#: Where the scheduler's σ grid ends before its last step to 0 (see :func:`build_scheduler`).
SHIFT_TERMINAL = 0.2


def build_scheduler() -> Any:
    """``FlowMatchEulerDiscreteScheduler`` without shift (32 px pictures need no shift towards noise), its grid
    stretched to end at σ = :data:`SHIFT_TERMINAL` (``shift_terminal``) before the last step to 0. Its own grid
    ends at σ = 0.001, so an N-step sample spends its last evaluation on a sliver: 5 steps gave 84.9% object
    accuracy that way and 89.3% stretched (24 gate prompts x 16 samples, guidance 3)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, shift_terminal=SHIFT_TERMINAL)


def _no_t5_tokenizer() -> Any:
    """A one-word T5 tokenizer of length :data:`T5_TOKENS`: the pipeline has no T5, and its prompt embeddings
    then hold that many zero tokens (:func:`helpers.pipeline_info.text_tokens` reads the length here)."""
    from helpers.tokenizer import build_t5_tokenizer

    return build_t5_tokenizer(["none"], model_max_length=T5_TOKENS)


def assemble_pipeline(vae: Any, text_encoder: Any, text_encoder_2: Any, tokenizer: Any, transformer: Any) -> Any:
    """A stock ``StableDiffusion3Pipeline`` from the parts (no T5). The autoencoder gets the ``shift_factor`` 0
    that SD 3's pipeline reads (the teaching autoencoder's latents are only scaled)."""
    from diffusers import StableDiffusion3Pipeline

    if vae.config.shift_factor is None:
        vae.register_to_config(shift_factor=0.0)
    return StableDiffusion3Pipeline(transformer=transformer, scheduler=build_scheduler(), vae=vae,
                                    text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2,
                                    tokenizer_2=tokenizer, text_encoder_3=None, tokenizer_3=_no_t5_tokenizer())


def _encode(text_encoder: Any, text_encoder_2: Any, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The tokens and pooled embedding exactly as ``StableDiffusion3Pipeline.encode_prompt`` builds them:
    penultimate hidden states side by side, then :data:`T5_TOKENS` zero tokens; projected pooled side by side."""
    tokens, pooled = [], []
    for encoder in (text_encoder, text_encoder_2):
        out = encoder(ids, output_hidden_states=True)
        tokens.append(out.hidden_states[-2])
        pooled.append(out.text_embeds)
    seq = torch.cat(tokens, dim=-1)
    zeros = seq.new_zeros(seq.shape[0], T5_TOKENS, seq.shape[-1])
    return torch.cat([seq, zeros], dim=1), torch.cat(pooled, dim=-1)


def train_transformer(vae: Any, tokenizer: Any, images: torch.Tensor, labels: torch.Tensor, cfg: FlowTrainConfig,
                      prompts: list[str], *, progress: bool = True) -> tuple[Any, Any, Any, list[float]]:
    """Train the transformer and both text encoders by rectified flow → (transformer, encoder, encoder 2,
    losses). ``labels`` (N, K) index into ``prompts`` as in :func:`helpers.teaching.text2img.train_unet`."""
    from diffusers.training_utils import EMAModel, compute_density_for_timestep_sampling

    from helpers.teaching.text2img import encode_latents

    gen = torch.Generator().manual_seed(cfg.seed + 2)
    torch.manual_seed(cfg.seed + 2)
    transformer = build_transformer(cfg).train()
    text_encoder, text_encoder_2 = (e.train() for e in build_text_encoders(tokenizer))
    mean, std = encode_latents(vae, images)  # times the VAE's scaling_factor (its shift_factor is 0)
    ids = tokenizer(list(prompts) + [""], padding="max_length", max_length=MAX_TOKENS, truncation=True,
                    return_tensors="pt").input_ids
    empty = len(prompts)
    params = [*transformer.parameters(), *text_encoder.parameters(), *text_encoder_2.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    sched = lr_schedule(opt, cfg.warmup, cfg.steps)
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    losses: list[float] = []
    bar = progress_bar(cfg.steps, "transformer+text", progress)
    for _ in range(cfg.steps):
        idx = torch.randint(len(mean), (cfg.batch,), generator=gen)
        x0 = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)
        rows = caption_rows(labels, idx, empty, cfg.prompt_dropout, gen)
        sigma = compute_density_for_timestep_sampling("logit_normal", cfg.batch, logit_mean=cfg.logit_mean,
                                                      logit_std=cfg.logit_std, device="cpu", generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma.view(-1, 1, 1, 1)
        xs = (1 - s) * x0 + s * noise
        tokens, pooled = _encode(text_encoder, text_encoder_2, ids[rows])
        v = transformer(hidden_states=xs, timestep=sigma * 1000, encoder_hidden_states=tokens,
                        pooled_projections=pooled).sample
        training_step(F.mse_loss(v, noise - x0), params, opt, sched, ema, losses, bar)
    bar.close()
    ema.copy_to(params)
    return transformer.eval(), text_encoder.eval(), text_encoder_2.eval(), losses


def train_flow_stage(autoencoder_dir: str | Path, out_dir: str | Path, *, smoke: bool = False, seed: int = 0,
                     progress: bool = True, cfg: FlowTrainConfig | None = None) -> Path:
    """Training stage: the transformer and text encoders on the latents of the teaching autoencoder; the whole
    ``StableDiffusion3Pipeline`` is saved to ``out_dir`` (swapped in whole, never half-written)."""
    from diffusers import AutoencoderKL

    cfg = replace(cfg or (SMOKE if smoke else FlowTrainConfig()), seed=seed)
    train = training_split(smoke)
    prompts, labels = caption_table(train)
    tokenizer = build_tokenizer()
    vae = AutoencoderKL.from_pretrained(autoencoder_dir)
    transformer, enc, enc2, _ = train_transformer(vae, tokenizer, train.images, labels, cfg, prompts,
                                                  progress=progress)
    return save_pipeline(assemble_pipeline(vae, enc, enc2, tokenizer, transformer), out_dir)


def load_teaching_flow(*, device: Any = None, dtype: Any = None) -> Any:
    """The shipped ``"teaching-flow"`` pipeline (``StableDiffusion3Pipeline``, no T5), on ``device`` in ``dtype``."""
    import torch

    from helpers.devices import dtype_kwarg, quiet_libraries
    from helpers.teaching.common import WEIGHTS_DIR, TeachingWeightsMissingError

    folder = WEIGHTS_DIR / NAME
    if not (folder / "model_index.json").is_file():
        raise TeachingWeightsMissingError(
            f"The teaching flow model's weights are missing from {folder}. Run `make teaching-models` "
            "(or `python -m helpers.teaching.train --only flow`) to train them.")
    cast = dtype_kwarg(dtype) if dtype is not None and dtype != torch.float32 else {}  # the weights: float32
    with quiet_libraries():
        from diffusers import StableDiffusion3Pipeline

        pipe = StableDiffusion3Pipeline.from_pretrained(str(folder), text_encoder_3=None, **cast)
    return pipe.to(device) if device is not None else pipe


def defaults(folder: str | Path | None = None) -> dict:
    """The model card's ``{"steps", "guidance_scale", "height", "width"}`` (what the backends use), from
    ``card.json`` beside the weights; ``FALLBACK_*`` while there is none."""
    from helpers.teaching.common import WEIGHTS_DIR
    from helpers.teaching.text2img import card_settings

    return card_settings(Path(folder or WEIGHTS_DIR / NAME) / CARD, FALLBACK_STEPS, FALLBACK_GUIDANCE)


__all__ = ["CARD", "FlowTrainConfig", "NAME", "SMOKE", "T5_TOKENS", "assemble_pipeline", "build_scheduler",
           "build_text_encoders", "build_transformer", "defaults", "load_teaching_flow", "train_flow_stage",
           "train_transformer"]
