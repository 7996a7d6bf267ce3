"""DALL-E 2's stage one for the teaching world: a diffusion prior from CLIP text embeddings to CLIP image embeddings.

Introduced in notebook 03_unclip_image_interpolation. unCLIP factorises text-to-image as
p(x | y) = p(x | z_i, y) · p(z_i | y): the *prior* p(z_i | y) proposes a CLIP image embedding z_i for the
caption y, and the decoder (:mod:`helpers.teaching.unclip_model`) paints an image for it. Karlo's prior, like this
one, is a diffusion model over the embedding vector: diffusers' ``PriorTransformer`` reads the noisy embedding,
the timestep, the caption's pooled CLIP text embedding and its per-token hidden states, and predicts the clean
embedding (``prediction_type="sample"``), in embedding coordinates standardised per dimension (``clip_mean`` /
``clip_std``, which ``post_process_latents`` undoes). The caption is replaced by the empty prompt 15% of the
time, so ``prior_guidance_scale`` works in ``UnCLIPPipeline``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    # The defining module: mypy resolves ``from diffusers import X`` to diffusers' dummy placeholder classes.
    from diffusers.models.transformers.prior_transformer import PriorTransformer

NUM_TRAIN_TIMESTEPS = 1000


def build_prior(embedding_dim: int, num_tokens: int) -> PriorTransformer:
    """An untrained ``PriorTransformer`` (4 layers, width 128) for ``embedding_dim`` CLIP embeddings and
    ``num_tokens`` text tokens."""
    from diffusers import PriorTransformer

    return PriorTransformer(  # type: ignore[return-value]  # mypy sees diffusers' dummy class here
        num_attention_heads=4,
        attention_head_dim=32,
        num_layers=4,
        embedding_dim=embedding_dim,
        num_embeddings=num_tokens,
        additional_embeddings=4,
    )


def build_prior_scheduler():
    """Karlo's prior scheduler: ``UnCLIPScheduler`` predicting the sample, clipped to ±5 standard deviations."""
    from diffusers import UnCLIPScheduler

    return UnCLIPScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS, variance_type="fixed_small_log", prediction_type="sample",
        clip_sample=True, clip_sample_range=5.0,
    )


def train_prior(data, plan, *, seed: int = 0, progress: bool = True) -> torch.nn.Module:
    """Train the prior on ``data`` (:func:`helpers.teaching.unclip_model.scene_training_data`): each step pairs
    scenes with one of their caption variants (15% of the time the empty prompt, for guidance) and regresses the standardised image embedding from its noised version."""
    from tqdm.auto import tqdm

    from helpers.teaching.common import cosine_schedule

    _, embeds, (all_embeds, all_hidden, all_masks), variants = data
    empty = len(all_embeds) - 1
    torch.manual_seed(seed + 7)
    prior = build_prior(embeds.shape[-1], all_hidden.shape[1])
    mean, std = embeds.mean(0, keepdim=True), embeds.std(0, keepdim=True)
    with torch.no_grad():
        prior.clip_mean.copy_(mean)
        prior.clip_std.copy_(std)
    target_all = (embeds - mean) / std
    scheduler = build_prior_scheduler()
    params = [p for n, p in prior.named_parameters() if n not in ("clip_mean", "clip_std")]
    prior.clip_mean.requires_grad_(False)
    prior.clip_std.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    lr = cosine_schedule(opt, plan.prior_steps)
    gen = torch.Generator().manual_seed(seed + 7)
    b = plan.prior_batch_size
    prior.train()
    for _ in tqdm(range(plan.prior_steps), desc="unCLIP prior", disable=not progress):
        idx = torch.randint(0, len(embeds), (b,), generator=gen)
        rows = variants[idx, torch.randint(variants.shape[1], (b,), generator=gen)]
        rows = torch.where(torch.rand(b, generator=gen) < 0.15, torch.full_like(rows, empty), rows)
        x0 = target_all[idx]
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (b,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        xt = scheduler.add_noise(x0, noise, t)
        pred = prior(xt, timestep=t, proj_embedding=all_embeds[rows], encoder_hidden_states=all_hidden[rows],
                     attention_mask=all_masks[rows]).predicted_image_embedding
        loss = F.mse_loss(pred, x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lr.step()
    return prior.eval()
