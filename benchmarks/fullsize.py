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

``python -m benchmarks.fullsize [--only sd15|sdxl|karlo]`` prints one line per model: build time, step time, peak
memory. Needs about 20 GB of free memory for SDXL in float32.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fullsize", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("sd15", "sdxl", "karlo"), help="one model, in this process")
    args = parser.parse_args(argv)
    if args.only:
        print(json.dumps(run_one(args.only)), flush=True)
        return 0
    for model in ("sd15", "sdxl", "karlo"):  # one process each: each peak is that model's alone
        out = subprocess.run([sys.executable, "-m", "benchmarks.fullsize", "--only", model], capture_output=True,
                             text=True)
        line = (out.stdout.strip().splitlines() or [""])[-1]
        print(line if out.returncode == 0 else f"{model}: failed ({out.stderr.strip().splitlines()[-1:]})",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
