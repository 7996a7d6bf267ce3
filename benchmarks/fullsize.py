"""``make test-fullsize`` (opt-in, not in CI): the real architectures at full size, random weights, on the CPU.

Stable Diffusion 1.5 (its published configuration, :func:`benchmarks.bench.sd15_configs`) and SDXL base (the
published UNet, VAE and both text encoders, below) are built with random weights — nothing is downloaded — and
driven through the public API: ``helpers.encode_prompts`` (for SDXL: both encoders and the pooled embedding) and
``helpers.render_frames``, one DDIM step without guidance at the native resolution (512x512, 1024x1024). Each
model runs in its own process, so the peak resident memory printed is that model's alone. The tokenizer is a
small CLIP tokenizer with the real 77-token length (the embedding tables keep the real 49,408 rows).

Karlo (its published decoder, super-res UNets, ``text_proj`` and CLIP ViT-L/14) encodes a 256x256 image with
``helpers.encode_images`` and decodes it with ``helpers.unclip.decode``: one decoder step at 64x64 and one
super-res step at 256x256.

Stable Diffusion 3.5 medium (``sd35``): the published transformer (MMDiT-X, 2.47 B parameters with its position
table), VAE and both CLIP text encoders with their projections, in a stock ``StableDiffusion3Pipeline``; T5-XXL
(4.76 B parameters, 19 GB in float32) is left out, as the pipeline allows: its 256 tokens are then zeros, so the
prompt is still 77 + 256 = 333 tokens of width 4,096. One prompt through ``helpers.encode_prompts``, then one step
without guidance at 1024x1024 (4,096 image tokens) through ``helpers.render_frames``, timing the transformer
and the VAE decode inside it. It first checks the free memory for 13.5 GB of float32 weights and a 4 GiB
allowance (14.7 GiB peak measured); short of that it reports the parameter count and the block timings only.
Either way it times one joint block with dual attention and one without at the full token count, and 13 + 11 of
them as an estimate of the transformer's forward.

``python -m benchmarks.fullsize [--only sd15|sdxl|karlo|sd35]`` prints one line per model: build time, step time,
peak memory. Needs about 20 GB of free memory for SDXL in float32.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch

SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(5, 10, 20),
    transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048, use_linear_projection=True,
    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
    norm_num_groups=32,
)  # fmt: skip
SDXL_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")
SDXL_TEXT_2 = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                   num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu", projection_dim=1280)
SDXL_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=1024, layers_per_block=2,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=0.13025,
                force_upcast=True)


# Karlo (kakaobrain/karlo-v1-alpha-image-variations): the published decoder, super-res, text_proj and CLIP ViT-L/14.
KARLO_DECODER = dict(
    sample_size=64, layers_per_block=3, block_out_channels=(320, 640, 960, 1280), in_channels=3, out_channels=6,
    down_block_types=("ResnetDownsampleBlock2D",) + ("SimpleCrossAttnDownBlock2D",) * 3,
    up_block_types=("SimpleCrossAttnUpBlock2D",) * 3 + ("ResnetUpsampleBlock2D",),
    mid_block_type="UNetMidBlock2DSimpleCrossAttn", cross_attention_dim=1536, attention_head_dim=64,
    class_embed_type="identity", resnet_time_scale_shift="scale_shift",
)  # fmt: skip
KARLO_SUPER_RES = dict(sample_size=256, layers_per_block=3, block_out_channels=(320, 640, 960, 1280), in_channels=6,
                       out_channels=3, down_block_types=("ResnetDownsampleBlock2D",) * 4,
                       up_block_types=("ResnetUpsampleBlock2D",) * 4, add_attention=False)
KARLO_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
KARLO_VISION = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=224, patch_size=14, hidden_act="quick_gelu", projection_dim=768)


# Stable Diffusion 3.5 medium (stabilityai/stable-diffusion-3.5-medium, transformer/config.json): 24 joint blocks of
# 24 heads x 64, dual attention (an image-only self-attention beside the joint one) in blocks 0-12, RMS-normalised
# queries and keys, a 384 x 384 position table cropped to the image.
SD35_MEDIUM_TRANSFORMER = dict(
    sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
    num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536, pooled_projection_dim=2048,
    pos_embed_max_size=384, dual_attention_layers=tuple(range(13)), qk_norm="rms_norm",
)  # fmt: skip
# The 16-channel autoencoder of SD 3 / 3.5 (no quant convs; latents normalised by shift and scale) and FLUX.1's.
SD3_VAE = dict(in_channels=3, out_channels=3, latent_channels=16, sample_size=1024, layers_per_block=2,
               block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
               up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=1.5305,
               shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False, force_upcast=True)
FLUX_VAE = {**SD3_VAE, "scaling_factor": 0.3611, "shift_factor": 0.1159}
# SD 3's text encoders: CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 text towers, each with its projection.
SD3_TEXT = {**SDXL_TEXT, "projection_dim": 768}
SD3_TEXT_2 = SDXL_TEXT_2
# T5 v1.1 XXL's encoder (SD 3's text_encoder_3, FLUX.1's text_encoder_2): 4.76 B parameters.
T5_XXL = dict(vocab_size=32128, d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24,
              feed_forward_proj="gated-gelu", relative_attention_num_buckets=32, layer_norm_epsilon=1e-6,
              tie_word_embeddings=False, pad_token_id=0, eos_token_id=1)
# FLUX.1 [schnell] (black-forest-labs/FLUX.1-schnell): 19 double-stream and 38 single-stream blocks of 24 heads x 128
# on packed 2x2 latent patches (64 channels), rotary axes 16 + 56 + 56; [dev] adds a guidance embedding.
FLUX_SCHNELL_TRANSFORMER = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
                                attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                                pooled_projection_dim=768, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
#: Prompt tokens of each family at full size: SD 3 = CLIP 77 + T5 256; FLUX = T5 512.
SD3_T5_TOKENS, FLUX_T5_TOKENS = 256, 512


# Stand-ins of the same structure for the smoke tests: SD 3.5 with dual attention in block 0 of 3 and RMS-normalised
# queries and keys on 8x8 latents in 2x2 patches; FLUX.1 with one block of each kind; both draw 16x16 pictures.
_SMOKE_TEXT = dict(vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                   num_attention_heads=2, max_position_embeddings=77, projection_dim=32)
_SMOKE_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=16, layers_per_block=1,
                  block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4, scaling_factor=1.5, shift_factor=0.06,
                  use_quant_conv=False, use_post_quant_conv=False)
_SMOKE_T5 = dict(vocab_size=32128, d_model=64, d_ff=37, d_kv=8, num_heads=4, num_layers=1,
                 feed_forward_proj="gated-gelu", relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1)
_SMOKE_SD35 = dict(sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=3, attention_head_dim=8,
                   num_attention_heads=2, joint_attention_dim=64, caption_projection_dim=16, pooled_projection_dim=64,
                   pos_embed_max_size=8, dual_attention_layers=(0,), qk_norm="rms_norm")
_SMOKE_FLUX = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                   num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=False,
                   axes_dims_rope=(4, 4, 8))
SMOKE_CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "sd35": {"transformer": _SMOKE_SD35, "vae": _SMOKE_VAE, "text": _SMOKE_TEXT, "text_2": _SMOKE_TEXT, "t5": _SMOKE_T5},
    "flux": {"transformer": _SMOKE_FLUX, "vae": _SMOKE_VAE,
             "text": {k: v for k, v in _SMOKE_TEXT.items() if k != "projection_dim"},
             "t5": {**_SMOKE_T5, "d_model": 32}},
}


def flow_configs(model: str) -> dict[str, dict[str, Any]]:
    """The published component configurations of ``"sd35"`` (SD 3.5 medium) or ``"flux"`` (FLUX.1 [schnell])."""
    if model == "sd35":
        return {"transformer": SD35_MEDIUM_TRANSFORMER, "vae": SD3_VAE, "text": SD3_TEXT, "text_2": SD3_TEXT_2,
                "t5": T5_XXL}
    if model == "flux":
        return {"transformer": FLUX_SCHNELL_TRANSFORMER, "vae": FLUX_VAE, "text": SDXL_TEXT, "t5": T5_XXL}
    raise ValueError(f"model must be 'sd35' or 'flux', got {model!r}")


def build_flow(model: str, *, t5: bool = True, configs: dict[str, dict[str, Any]] | None = None) -> Any:
    """A ``StableDiffusion3Pipeline`` (``"sd35"``) or ``FluxPipeline`` (``"flux"``) with random weights from
    :func:`flow_configs` (or ``configs``), built on torch's current default device and dtype. ``t5=False`` leaves
    SD 3's T5 out (its tokens are then zeros; FLUX cannot go without it). Tokenizers are small local ones with
    the real lengths (the embedding tables keep the real rows)."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        T5Config,
        T5EncoderModel,
    )

    from helpers.tokenizer import build_t5_tokenizer

    cfg = configs or flow_configs(model)
    torch.manual_seed(0)
    tok = _tokenizer()
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    words = ["a photo of a lighthouse on a cliff at sunrise painting"]
    if model == "flux":
        t5_tok = build_t5_tokenizer(words, model_max_length=FLUX_T5_TOKENS)
        scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False, base_image_seq_len=256,
                                                    max_image_seq_len=4096, base_shift=0.5, max_shift=1.15)
        return FluxPipeline(scheduler=scheduler, vae=AutoencoderKL(**cfg["vae"]),
                            text_encoder=CLIPTextModel(CLIPTextConfig(**cfg["text"], **ids)), tokenizer=tok,
                            text_encoder_2=T5EncoderModel(T5Config(**cfg["t5"])), tokenizer_2=t5_tok,
                            transformer=FluxTransformer2DModel(**cfg["transformer"]))
    if model != "sd35":
        raise ValueError(f"model must be 'sd35' or 'flux', got {model!r}")
    t5_tok = build_t5_tokenizer(words, model_max_length=SD3_T5_TOKENS) if t5 else None
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**cfg["transformer"]), scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=AutoencoderKL(**cfg["vae"]), text_encoder=CLIPTextModelWithProjection(CLIPTextConfig(**cfg["text"], **ids)),
        tokenizer=tok, text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**cfg["text_2"], **ids)),
        tokenizer_2=_tokenizer(), text_encoder_3=T5EncoderModel(T5Config(**cfg["t5"])) if t5 else None,
        tokenizer_3=t5_tok)


def _karlo() -> Any:
    from diffusers import UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
    from diffusers.pipelines.deprecated.unclip import UnCLIPImageVariationPipeline, UnCLIPTextProjModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    from helpers.teaching.clip_model import image_processor_class

    tok = _tokenizer()
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    return UnCLIPImageVariationPipeline(
        decoder=UNet2DConditionModel(**KARLO_DECODER),
        text_proj=UnCLIPTextProjModel(clip_extra_context_tokens=4, clip_embeddings_dim=768, time_embed_dim=1280,
                                      cross_attention_dim=1536),
        super_res_first=UNet2DModel(**KARLO_SUPER_RES), super_res_last=UNet2DModel(**KARLO_SUPER_RES),
        text_encoder=CLIPTextModelWithProjection(CLIPTextConfig(**KARLO_TEXT, **ids)), tokenizer=tok,
        image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(**KARLO_VISION)),
        feature_extractor=image_processor_class()(size={"shortest_edge": 224},
                                                  crop_size={"height": 224, "width": 224}),
        decoder_scheduler=UnCLIPScheduler(variance_type="learned_range", clip_sample_range=1.0),
        super_res_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", clip_sample_range=1.0),
    )


def _tokenizer() -> Any:
    from helpers.tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(["a photo of a lighthouse on a cliff at sunrise painting"], model_max_length=77)


def build(model: str) -> Any:
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from benchmarks.bench import sd15_configs

    torch.manual_seed(0)
    if model == "karlo":
        return _karlo()
    tok = _tokenizer()
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    if model == "sd15":
        cfg = sd15_configs()
        text = {**cfg["text_encoder"], **ids}
        return StableDiffusionPipeline(
            vae=AutoencoderKL(**cfg["vae"]), text_encoder=CLIPTextModel(CLIPTextConfig(**text)), tokenizer=tok,
            unet=UNet2DConditionModel(**cfg["unet"]), scheduler=DDIMScheduler(**cfg["scheduler"]),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionXLPipeline(
        vae=AutoencoderKL(**SDXL_VAE), text_encoder=CLIPTextModel(CLIPTextConfig(**SDXL_TEXT, **ids)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TEXT_2, **ids)), tokenizer=tok,
        tokenizer_2=_tokenizer(), unet=UNet2DConditionModel(**SDXL_UNET), scheduler=scheduler)


def run_one(model: str) -> dict[str, Any]:
    """Build ``model`` and render one frame at its native size through the public API (in this process)."""
    from helpers import encode_prompts, render_frames

    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.perf_counter()
    pipe = build(model)
    pipe.set_progress_bar_config(disable=True)
    built = time.perf_counter() - start
    if model == "karlo":
        return {**_karlo_step(pipe), "build_s": round(built, 1)}
    size = 512 if model == "sd15" else 1024
    params = sum(p.numel() for p in pipe.unet.parameters())
    start = time.perf_counter()
    with torch.no_grad():
        embeds, _ = encode_prompts(pipe, ["a photo of a lighthouse on a cliff at sunrise"])
        frame = render_frames(pipe, prompt_embeds=embeds, seed=0, num_inference_steps=1, guidance_scale=1.0,
                              height=size, width=size, output_type="np", progress=False)
    step = time.perf_counter() - start
    return {"model": model, "size": size, "unet_parameters": params, "build_s": round(built, 1),
            "encode_and_one_step_s": round(step, 1), "frame_shape": list(frame.shape),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


#: Float32 activations of SD 3.5 medium's one step at 1024x1024 beyond its weights (the VAE decode's peak), for
#: the memory check before building it: an allowance, not a measurement.
SD35_ACTIVATIONS = 4 * 2**30


def _available_bytes() -> int | None:
    """The kernel's estimate of memory available to a new process (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sizes(pipe: Any) -> dict[str, int]:
    """Parameters and persistent buffers (what a checkpoint stores) of each of ``pipe``'s torch modules."""
    out = {}
    for name, part in pipe.components.items():
        if isinstance(part, torch.nn.Module):
            persistent = [b for n, b in part.named_buffers() if n.rsplit(".", 1)[-1] not in
                          getattr(part.get_submodule(n.rsplit(".", 1)[0]) if "." in n else part,
                                  "_non_persistent_buffers_set", set())]
            out[name] = sum(p.numel() for p in part.parameters()) + sum(b.numel() for b in persistent)
    return out


def block_timing(transformer: dict[str, Any], image_tokens: int, text_tokens: int) -> dict[str, float]:
    """Seconds of one SD 3 joint transformer block of ``transformer``'s width with dual attention and one without,
    on ``image_tokens`` + ``text_tokens`` tokens (batch 1, random weights), and ``blocks_s``: the sum over the
    model's blocks (the last block's text branch, which stops early, counted as a whole one)."""
    from diffusers.models.attention import JointTransformerBlock

    heads, head_dim = transformer["num_attention_heads"], transformer["attention_head_dim"]
    dim = heads * head_dim
    g = torch.Generator().manual_seed(0)
    x, c, temb = (torch.randn(shape, generator=g) for shape in ((1, image_tokens, dim), (1, text_tokens, dim),
                                                                 (1, dim)))
    out: dict[str, float] = {}
    for dual in (True, False):
        block = JointTransformerBlock(dim, heads, head_dim, qk_norm=transformer.get("qk_norm"),
                                      use_dual_attention=dual).eval()
        start = time.perf_counter()
        with torch.no_grad():
            block(hidden_states=x, encoder_hidden_states=c, temb=temb)
        out["dual_block_s" if dual else "block_s"] = round(time.perf_counter() - start, 2)
        del block
    n_dual = len(transformer.get("dual_attention_layers", ()))
    out["blocks_s"] = round(n_dual * out["dual_block_s"] + (transformer["num_layers"] - n_dual) * out["block_s"], 1)
    return out


def run_sd35(configs: dict[str, dict[str, Any]] | None = None, *, one_block: bool = False) -> dict[str, Any]:
    """SD 3.5 medium at its published size (module docstring): one step at its native size through the public
    API when the free memory holds it (and ``one_block`` is False), else its parameter count and block timings.
    ``configs`` (:func:`flow_configs` layout) stand in for the published ones in the smoke test."""
    from benchmarks.flow import PartTimer
    from helpers import encode_prompts, render_frames

    cfg = configs or flow_configs("sd35")
    tcfg = cfg["transformer"]
    with torch.device("meta"):  # counts without memory
        meta = build_flow("sd35", t5=False, configs=cfg)
    sizes = _sizes(meta)  # parameters and the position table, a persistent buffer: what the checkpoint stores
    params = sum(p.numel() for p in meta.transformer.parameters())
    del meta
    size = tcfg["sample_size"] * 2 ** (len(cfg["vae"]["block_out_channels"]) - 1)
    image_tokens = (tcfg["sample_size"] // tcfg["patch_size"]) ** 2
    text_tokens = _tokenizer().model_max_length + SD3_T5_TOKENS  # CLIP's 77, then T5's (zeros without T5)
    need = 4 * sum(sizes.values()) + (SD35_ACTIVATIONS if configs is None else 0)
    free = _available_bytes()
    out: dict[str, Any] = {
        "model": "sd35", "size": size, "image_tokens": image_tokens, "text_tokens": text_tokens,
        "transformer_parameters": params, "transformer_position_table": sizes["transformer"] - params,
        "stored_values": sizes,
        "real_size": ("transformer, VAE, CLIP-L and CLIP-G with projections (published configs, random weights)"
                      if configs is None else "nothing: smoke-test configs"),
        "not_real_size": "no T5-XXL (its 256 tokens are zeros, as the pipeline makes them without it); small "
                         "local tokenizers of the real lengths",
        **block_timing(tcfg, image_tokens, text_tokens),
    }
    short = free is not None and free < need
    if one_block or short:
        why = (f"{(free or 0) / 2**30:.1f} GiB available, {need / 2**30:.1f} GiB needed in float32" if short
               else "asked for (--one-block)")
        return {**out, "mode": f"one block: {why}",
                "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    start = time.perf_counter()
    pipe = build_flow("sd35", t5=False, configs=cfg)
    pipe.set_progress_bar_config(disable=True)
    built = time.perf_counter() - start
    start = time.perf_counter()
    embeds, _ = encode_prompts(pipe, ["a photo of a lighthouse on a cliff at sunrise"])
    encoded = time.perf_counter() - start
    pipe.text_encoder = pipe.text_encoder_2 = None  # done with them: 3.3 GB less while the transformer runs
    with torch.no_grad(), PartTimer(pipe) as parts:
        start = time.perf_counter()
        frame = render_frames(pipe, prompt_embeds=embeds, seed=0, num_inference_steps=1, guidance_scale=1.0,
                              height=size, width=size, output_type="np", progress=False)
        step = time.perf_counter() - start
    return {**out, "mode": "one step through encode_prompts and render_frames", "build_s": round(built, 1),
            "encode_s": round(encoded, 1), "one_step_s": round(step, 1),
            "transformer_s": round(parts.seconds["network"][0], 1), "vae_decode_s": round(parts.seconds["decode"][0], 1),
            "frame_shape": list(frame.shape), "frame_finite": bool(np.isfinite(frame).all()),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def _karlo_step(pipe: Any) -> dict[str, Any]:
    """Karlo: a 256x256 image through ``encode_images`` and ``helpers.unclip.decode`` (one decoder step at 64x64,
    one super-res step at 256x256, DDIM, no guidance)."""
    from PIL import Image

    from helpers import encode_images
    from helpers.unclip import decode

    image = Image.new("RGB", (256, 256), (200, 120, 40))
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    with torch.no_grad():
        embeds = encode_images(pipe, image)
        frame = decode(pipe, embeds, torch.randn(1, 3, 64, 64, generator=g), torch.randn(1, 3, 256, 256, generator=g),
                       num_inference_steps=1, super_res_num_inference_steps=1, output_type="np")
    step = time.perf_counter() - start
    params = sum(p.numel() for m in (pipe.decoder, pipe.super_res_first) for p in m.parameters())
    return {"model": "karlo", "size": 256, "decoder_and_super_res_parameters": params,
            "encode_and_one_step_s": round(step, 1), "frame_shape": list(frame.shape),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


#: What ``make test-fullsize`` runs, each in its own process.
MODELS = ("sd15", "sdxl", "karlo", "sd35")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fullsize", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=MODELS, help="one model, in this process")
    parser.add_argument("--one-block", action="store_true",
                        help="sd35: parameter count and block timings only, even where memory would allow a step")
    args = parser.parse_args(argv)
    if args.only == "sd35":
        print(json.dumps(run_sd35(one_block=args.one_block)), flush=True)
        return 0
    if args.only:
        print(json.dumps(run_one(args.only)), flush=True)
        return 0
    for model in MODELS:  # one process each: each peak is that model's alone
        out = subprocess.run([sys.executable, "-m", "benchmarks.fullsize", "--only", model], capture_output=True,
                             text=True)
        line = (out.stdout.strip().splitlines() or [""])[-1]
        print(line if out.returncode == 0 else f"{model}: failed ({out.stderr.strip().splitlines()[-1:]})",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
