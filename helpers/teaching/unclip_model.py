"""The teaching unCLIP: a miniature DALL-E 2 trained on the emoji scenes, as stock diffusers pipelines.

Introduced in notebook 03_unclip_image_interpolation. Components (each in its own subfolder of
``helpers/teaching/weights/teaching-unclip``, safetensors):

* ``text_encoder`` / ``image_encoder`` / ``tokenizer`` / ``feature_extractor`` — the tiny CLIP
  (:mod:`helpers.teaching.clip_model`).
* ``text_proj`` — diffusers' ``UnCLIPTextProjModel``: projects the CLIP image embedding into the timestep
  embedding and into four extra context tokens, exactly as Karlo does.
* ``decoder`` — a ``UNet2DConditionModel`` at 16x16 in Karlo's block layout (simple cross-attention, scale-shift
  time conditioning, ``class_embed_type="identity"`` for the additive CLIP embedding). It sees the scene's
  caption half of the time and the empty prompt otherwise, so it serves both the image-variation pipeline
  (empty prompt) and the text-to-image ``UnCLIPPipeline`` (the caption). Like Karlo's it predicts
  noise *and* a learned-range variance (6 output channels), trained with the hybrid loss of Improved DDPM
  (simple MSE + variational bound, the mean stop-gradiented in the bound), in one cosine cycle; the shipped
  weights are the exponential moving average of the trained ones. The embedding is replaced by the learned null
  embedding (and the caption by the empty prompt) 10% of the time, so ``decoder_guidance_scale`` works.
* ``prior`` / ``prior_scheduler`` — DALL-E 2's stage one (:mod:`helpers.teaching.prior`): a ``PriorTransformer``
  that turns a CLIP text embedding into a CLIP image embedding, with an ``UnCLIPScheduler``.
* ``super_res_first`` / ``super_res_last`` — a ``UNet2DModel`` that turns 16x16 into 32x32, conditioned on the
  bicubic upsample of the decoder output (``in_channels = 2 x 3``); both stages share the same weights. It
  predicts the clean image (``prediction_type="sample"``) rather than the noise.
* ``decoder_scheduler`` / ``super_res_scheduler`` — ``UnCLIPScheduler`` (squared-cosine, 1000 steps).

``load_teaching_unclip()`` builds the ``UnCLIPImageVariationPipeline`` (``text=True``: the ``UnCLIPPipeline``
with the prior) by loading each component and calling the constructor (diffusers 0.42's pipeline-level
save/load round trip is broken for unCLIP).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "teaching-unclip"
DECODER_SIZE = 16
DECODER_CHANNELS = (32, 64)
IMAGE_SIZE = 32
NUM_TRAIN_TIMESTEPS = 1000
COMPONENTS = (
    "decoder", "text_proj", "super_res_first", "super_res_last", "text_encoder", "image_encoder", "tokenizer",
    "feature_extractor", "decoder_scheduler", "super_res_scheduler", "prior", "prior_scheduler",
)
#: Decoder and super-res steps and decoder guidance the backends use (see the model card).
DEFAULT_DECODER_STEPS = 25
DEFAULT_SUPER_RES_STEPS = 10
DEFAULT_DECODER_GUIDANCE = 4.0
DEFAULT_PRIOR_STEPS = 25
DEFAULT_PRIOR_GUIDANCE = 4.0


@dataclass(frozen=True)
class TrainingPlan:
    """Steps and batch sizes of the three trainings (the smoke plan runs the same code for a few steps)."""

    clip_steps: int = 1500
    decoder_steps: int = 6000
    decoder_ema_decay: float = 0.999
    super_res_steps: int = 500
    prior_steps: int = 3000
    prior_batch_size: int = 128
    text_dropout: float = 0.5
    batch_size: int = 48
    clip_batch_size: int = 128
    null_embedding_prob: float = 0.1
    embedding_noise: float = 0.03


SMOKE_PLAN = TrainingPlan(
    clip_steps=2, decoder_steps=2, super_res_steps=2, batch_size=8, clip_batch_size=16,
    prior_steps=2, prior_batch_size=8,
)


def build_decoder() -> torch.nn.Module:
    """The untrained 16x16 decoder UNet (Karlo's layout, scaled down)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(  # type: ignore[return-value]  # mypy sees diffusers' dummy class here
        sample_size=DECODER_SIZE,
        in_channels=3,
        out_channels=6,  # noise and learned-range variance, like Karlo
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=DECODER_CHANNELS,
        layers_per_block=1,
        cross_attention_dim=64,
        attention_head_dim=16,
        norm_num_groups=8,
        resnet_time_scale_shift="scale_shift",
        class_embed_type="identity",
    )


def build_text_proj(embedding_dim: int, decoder) -> torch.nn.Module:
    """diffusers' ``UnCLIPTextProjModel`` sized for ``decoder``."""
    from diffusers.pipelines.deprecated.unclip import UnCLIPTextProjModel

    return UnCLIPTextProjModel(
        clip_extra_context_tokens=4,
        clip_embeddings_dim=embedding_dim,
        time_embed_dim=decoder.config.block_out_channels[0] * 4,
        cross_attention_dim=decoder.config.cross_attention_dim,
    )


def build_super_res() -> torch.nn.Module:
    """The untrained 16 → 32 super-resolution UNet (input: noisy image and upsampled low-res, 6 channels)."""
    from diffusers import UNet2DModel

    return UNet2DModel(  # type: ignore[return-value]  # mypy sees diffusers' dummy class here
        sample_size=IMAGE_SIZE,
        in_channels=6,
        out_channels=3,
        down_block_types=("ResnetDownsampleBlock2D",) * 2,
        up_block_types=("ResnetUpsampleBlock2D",) * 2,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        resnet_time_scale_shift="scale_shift",
    )


def build_schedulers():
    """``(decoder_scheduler, super_res_scheduler)``: the ``UnCLIPScheduler`` pair Karlo uses."""
    from diffusers import UnCLIPScheduler

    decoder = UnCLIPScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, variance_type="learned_range")
    # The super-res stage predicts the clean image: its task is nearly deterministic (sharpen the bicubic
    # upsample), and a sample-predictor gets it right at every noise level after a few hundred steps, where a
    # noise-predictor's image estimate at high noise stays grainy.
    super_res = UnCLIPScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS, variance_type="fixed_small_log", prediction_type="sample"
    )
    return decoder, super_res


def _variational_bound(scheduler, x0, xt, t, eps, v) -> torch.Tensor:
    """Improved-DDPM bound term KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) in bits, per sample (t = 0 → 0).

    ``eps`` must be detached (only the learned-range variance ``v`` in [-1, 1] learns from this term); the
    model variance is parameterised exactly as ``UnCLIPScheduler``'s ``learned_range``.
    """
    betas, abar = scheduler.betas.to(x0), scheduler.alphas_cumprod.to(x0)
    abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
    post_var = betas * (1 - abar_prev) / (1 - abar)

    def at(a):
        return a[t].view(-1, 1, 1, 1)

    log_q = at(post_var.clamp(min=1e-20).log())
    coef_x0 = at(betas * abar_prev.sqrt() / (1 - abar))
    x0_pred = (xt - at((1 - abar).sqrt()) * eps) / at(abar.sqrt())
    frac = (v + 1) / 2
    log_p = frac * at(betas.log()) + (1 - frac) * log_q
    mean_gap = (coef_x0 * (x0 - x0_pred)) ** 2  # the x_t terms of the two posterior means cancel
    kl = 0.5 * (-1.0 + log_p - log_q + torch.exp(log_q - log_p) + mean_gap * torch.exp(-log_p))
    kl = kl.mean(dim=(1, 2, 3)) / torch.log(torch.tensor(2.0))
    return torch.where(t > 0, kl, torch.zeros_like(kl))


@torch.no_grad()
def caption_features(text_encoder, tokenizer, captions):
    """``(text_embeds (C, D), last_hidden_state (C, L, D), attention_mask (C, L) bool)`` of ``captions``:
    what the unCLIP pipelines feed the prior and the decoder for a prompt."""
    tokens = tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    out = text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask)
    return out.text_embeds, out.last_hidden_state, tokens.attention_mask.bool()


def scene_training_data(clip, limit: int | None = None):
    """CLIP image embeddings of the training scenes, the features of every caption (the empty prompt last) and,
    per scene, the indices of its caption variants (N, 16): shared by the decoder and the prior."""
    from helpers.teaching.clip_model import pixel_values
    from helpers.teaching.scenes import load_split
    from helpers.teaching.text2img import caption_table

    train = load_split("train")
    if limit is not None:
        train = type(train)(train.scenes[:limit], train.images[:limit])
    with torch.no_grad():
        embeds = torch.cat([clip.image_encoder(pixel_values=pixel_values(chunk)).image_embeds
                            for chunk in train.images.split(1024)])
    prompts, variants = caption_table(train)
    return train, embeds, caption_features(clip.text_encoder, clip.tokenizer, prompts + [""]), variants


def train_decoder(plan: TrainingPlan, data, *, seed: int = 0, progress: bool = True
                  ) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Train ``(decoder, text_proj)`` on the training scenes' CLIP image embeddings (``data``:
    :func:`scene_training_data`) with the hybrid loss: one cosine cycle of ``plan.decoder_steps`` at lr 1e-3
    (diffusers' ``get_cosine_schedule_with_warmup``, 5% warm-up) and the EMA of the weights (diffusers'
    ``EMAModel``, decay up to ``plan.decoder_ema_decay``), which is what is returned."""
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    from helpers.teaching.common import cosine_schedule
    from helpers.unclip import resize_images

    train, embeds, (all_embeds, all_hidden, all_masks), variants = data
    x16 = resize_images(train.images, DECODER_SIZE) * 2 - 1
    torch.manual_seed(seed)
    decoder: Any = build_decoder()
    text_proj: Any = build_text_proj(embeds.shape[-1], decoder)
    empty = len(all_embeds) - 1
    scheduler, _ = build_schedulers()
    b, steps = plan.batch_size, plan.decoder_steps
    params = list(decoder.parameters()) + list(text_proj.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    lr = cosine_schedule(opt, steps)
    ema = EMAModel(params, decay=plan.decoder_ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    gen = torch.Generator().manual_seed(seed)
    decoder.train()
    text_proj.train()
    for _ in tqdm(range(steps), desc="unCLIP decoder", disable=not progress):
        idx = torch.randint(0, len(x16), (b,), generator=gen)
        x0 = x16[idx]
        emb = embeds[idx] + plan.embedding_noise * torch.randn(embeds[idx].shape, generator=gen)
        drop = torch.rand(b, 1, generator=gen) < plan.null_embedding_prob
        emb = torch.where(drop, text_proj.learned_classifier_free_guidance_embeddings[None], emb)
        rows = variants[idx, torch.randint(variants.shape[1], (b,), generator=gen)]
        silent = drop[:, 0] | (torch.rand(b, generator=gen) < plan.text_dropout)
        rows = torch.where(silent, torch.full_like(rows, empty), rows)
        prompt_embeds, hidden = all_embeds[rows], all_hidden[rows]
        mask = F.pad(all_masks[rows], (text_proj.clip_extra_context_tokens, 0), value=True)
        context, time_embeds = text_proj(
            image_embeddings=emb, prompt_embeds=prompt_embeds, text_encoder_hidden_states=hidden,
            do_classifier_free_guidance=False,
        )
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (b,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        xt = scheduler.add_noise(x0, noise, t)
        out = decoder(xt, t, encoder_hidden_states=context, class_labels=time_embeds, attention_mask=mask).sample
        eps, v = out.split(x0.shape[1], dim=1)
        loss = F.mse_loss(eps, noise) + _variational_bound(scheduler, x0, xt, t, eps.detach(), v).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lr.step()
        ema.step(params)
    ema.copy_to(params)
    return decoder.eval(), text_proj.eval()


def train_super_res(plan: TrainingPlan, *, seed: int = 0, progress: bool = True) -> torch.nn.Module:
    """Train the 16 → 32 super-resolution UNet on (bicubic-upsampled 16x16, 32x32) pairs of training scenes."""
    from tqdm.auto import tqdm

    from helpers.teaching.common import cosine_schedule
    from helpers.teaching.scenes import load_split
    from helpers.unclip import resize_images, upsample_like_pipeline

    train = load_split("train")
    x32 = train.images * 2 - 1
    low = upsample_like_pipeline(resize_images(train.images, DECODER_SIZE) * 2 - 1, IMAGE_SIZE)
    torch.manual_seed(seed + 1)
    unet = build_super_res()
    _, scheduler = build_schedulers()
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    lr = cosine_schedule(opt, plan.super_res_steps)
    gen = torch.Generator().manual_seed(seed + 1)
    b = plan.batch_size
    unet.train()
    for _ in tqdm(range(plan.super_res_steps), desc="unCLIP super-res", disable=not progress):
        idx = torch.randint(0, len(train), (b,), generator=gen)
        x0 = x32[idx]
        cond = low[idx] + 0.02 * torch.randn(x0.shape, generator=gen)  # robustness to decoder error
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (b,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        xt = scheduler.add_noise(x0, noise, t)
        target = x0 if scheduler.config.prediction_type == "sample" else noise
        loss = F.mse_loss(unet(torch.cat([xt, cond], dim=1), t).sample, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr.step()
    return unet.eval()


CLIP_PARTS = ("text_encoder", "image_encoder", "tokenizer", "feature_extractor")


def training_plan(smoke: bool) -> TrainingPlan:
    """The plan the stages train with: the shipped one, or the few-step smoke plan."""
    return SMOKE_PLAN if smoke else TrainingPlan()


def _load_clip(folder: Path):
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer, CLIPVisionModelWithProjection

    from helpers.teaching.clip_model import TinyClip, image_processor_class

    return TinyClip(
        CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder").eval(),
        CLIPVisionModelWithProjection.from_pretrained(folder / "image_encoder").eval(),
        CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        image_processor_class().from_pretrained(folder / "feature_extractor"),
    )


def train_clip_stage(out_dir: str | Path, *, smoke: bool = False, seed: int = 0, progress: bool = True) -> Path:
    """Training stage: the tiny CLIP, its halves saved to ``out_dir/<part>`` (``CLIP_PARTS``).

    Introduced in notebook 03_unclip_image_interpolation; :mod:`helpers.teaching.train` runs the stages, each
    reading what the earlier ones saved, and :func:`assemble_teaching_unclip` puts them together.
    """
    from helpers.teaching.clip_model import split_clip, train_tiny_clip

    plan = training_plan(smoke)
    clip_model, tokenizer = train_tiny_clip(steps=plan.clip_steps, batch_size=plan.clip_batch_size, seed=seed,
                                            progress=progress)
    clip = split_clip(clip_model, tokenizer)
    # A fast tokenizer's file records the padding and truncation of its last call: save it as the unCLIP
    # pipelines call it (padded and truncated to its 12 positions), whichever stage used it last.
    fast: Any = clip.tokenizer
    fast([""], padding="max_length", max_length=fast.model_max_length, truncation=True)
    for part in CLIP_PARTS:
        getattr(clip, part).save_pretrained(Path(out_dir) / part)
    return Path(out_dir)


def train_decoder_stage(clip_dir: str | Path, out_dir: str | Path, *, smoke: bool = False, seed: int = 0,
                        progress: bool = True) -> Path:
    """Training stage: the decoder and ``text_proj`` on the CLIP image embeddings of stage ``clip``."""
    plan = training_plan(smoke)
    data = scene_training_data(_load_clip(Path(clip_dir)), limit=256 if smoke else None)
    decoder, text_proj = train_decoder(plan, data, seed=seed, progress=progress)  # type: Any, Any
    decoder.save_pretrained(Path(out_dir) / "decoder")
    text_proj.save_pretrained(Path(out_dir) / "text_proj")
    return Path(out_dir)


def train_prior_stage(clip_dir: str | Path, out_dir: str | Path, *, smoke: bool = False, seed: int = 0,
                      progress: bool = True) -> Path:
    """Training stage: the prior (CLIP text embedding → CLIP image embedding) of stage ``clip``'s CLIP."""
    from helpers.teaching.prior import build_prior_scheduler, train_prior

    plan = training_plan(smoke)
    data = scene_training_data(_load_clip(Path(clip_dir)), limit=256 if smoke else None)
    prior: Any = train_prior(data, plan, seed=seed, progress=progress)
    prior.save_pretrained(Path(out_dir) / "prior")
    build_prior_scheduler().save_pretrained(Path(out_dir) / "prior_scheduler")
    return Path(out_dir)


def train_super_res_stage(out_dir: str | Path, *, smoke: bool = False, seed: int = 0,
                          progress: bool = True) -> Path:
    """Training stage: the 16 → 32 super-res UNet (it needs no CLIP), saved as both super-res stages."""
    super_res: Any = train_super_res(training_plan(smoke), seed=seed, progress=progress)
    for part in ("super_res_first", "super_res_last"):
        super_res.save_pretrained(Path(out_dir) / part)
    return Path(out_dir)


def assemble_teaching_unclip(stage_dirs: list[Path], out_dir: str | Path | None = None, *,
                             info: dict | None = None) -> Path:
    """Copy the stages' component folders and the schedulers into ``out_dir`` (default: the package's), with
    ``training.json`` (``info``). The folder is written to a temporary sibling first and then swapped in, so
    an interrupted run never leaves a half-written model."""
    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the shipped folder must be readable by everyone
    try:
        for stage in stage_dirs:
            for part in sorted(p for p in stage.iterdir() if p.is_dir()):
                shutil.copytree(part, tmp / part.name)
        decoder_scheduler, super_res_scheduler = build_schedulers()
        decoder_scheduler.save_pretrained(tmp / "decoder_scheduler")
        super_res_scheduler.save_pretrained(tmp / "super_res_scheduler")
        missing = [name for name in COMPONENTS if not (tmp / name).is_dir()]
        if missing:
            raise FileNotFoundError(f"the training stages did not write {', '.join(missing)}")
        (tmp / "training.json").write_text(json.dumps(info or {}, indent=2) + "\n", encoding="utf-8")
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-old-", dir=out_dir.parent))
            os.replace(out_dir, old / "x")
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def load_teaching_unclip(
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    *,
    path: str | Path | None = None,
    text: bool = False,
):
    """The shipped teaching unCLIP as a stock ``UnCLIPImageVariationPipeline`` (``text=True``: as the
    text-to-image ``UnCLIPPipeline``, prior → decoder → super-res, as Karlo's).

    Introduced in notebook 03_unclip_image_interpolation. ``path`` defaults to the folder inside the package
    (a folder written by `python -m helpers.teaching.train --only unclip` works too). Components are loaded one by one and the
    pipeline is built with its constructor.
    """
    from helpers.devices import quiet_libraries

    folder = Path(path) if path is not None else WEIGHTS_DIR
    missing = [name for name in COMPONENTS if not (folder / name).is_dir()]
    if missing:
        from helpers.teaching.common import TeachingWeightsMissingError

        raise TeachingWeightsMissingError(
            f"{folder} is not a teaching-unCLIP folder (missing {', '.join(missing)}). Retrain it with "
            "`python -m helpers.teaching.train --only unclip`."
        )
    with quiet_libraries():  # the unCLIP pipelines' deprecation notice; one "Loading weights" bar per CLIP half
        from diffusers import (
            PriorTransformer,
            UnCLIPImageVariationPipeline,
            UnCLIPPipeline,
            UnCLIPScheduler,
            UNet2DConditionModel,
            UNet2DModel,
        )
        from diffusers.pipelines.deprecated.unclip import UnCLIPTextProjModel
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer, CLIPVisionModelWithProjection

        from helpers.teaching.clip_model import image_processor_class

        shared = dict(
            decoder=UNet2DConditionModel.from_pretrained(folder / "decoder"),
            text_proj=UnCLIPTextProjModel.from_pretrained(folder / "text_proj"),
            super_res_first=UNet2DModel.from_pretrained(folder / "super_res_first"),
            super_res_last=UNet2DModel.from_pretrained(folder / "super_res_last"),
            text_encoder=CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder"),
            tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
            decoder_scheduler=UnCLIPScheduler.from_pretrained(folder / "decoder_scheduler"),
            super_res_scheduler=UnCLIPScheduler.from_pretrained(folder / "super_res_scheduler"),
        )
        pipe: Any  # either pipeline (mypy sees diffusers' dummy classes for both)
        if text:
            pipe = UnCLIPPipeline(
                prior=PriorTransformer.from_pretrained(folder / "prior"),
                prior_scheduler=UnCLIPScheduler.from_pretrained(folder / "prior_scheduler"),
                **shared,
            )
        else:
            pipe = UnCLIPImageVariationPipeline(
                image_encoder=CLIPVisionModelWithProjection.from_pretrained(folder / "image_encoder"),
                feature_extractor=image_processor_class().from_pretrained(folder / "feature_extractor"),
                **shared,
            )
    pipe.set_progress_bar_config(disable=True)
    if device is not None:
        pipe.to(device)
    if dtype is not None and dtype != torch.float32:  # the weights are float32: cast only when asked to
        pipe.to(dtype=dtype)
    return pipe
