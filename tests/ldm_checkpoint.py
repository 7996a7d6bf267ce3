"""Write a diffusers Stable Diffusion 1.x pipeline as one original-format (LDM / CompVis) checkpoint file.

A test utility: the single-file tests save a tiny random pipeline this way and load it back with diffusers'
``from_single_file``. The key layout is the one of the released ``v1-5-pruned.safetensors`` (UNet under
``model.diffusion_model.``, VAE under ``first_stage_model.``, CLIP under ``cond_stage_model.transformer.``).
diffusers' own loader is the independent check: a wrong name here leaves a weight missing or misplaced, and the
round trip (same tensors, same frames) fails.
"""

from __future__ import annotations

from pathlib import Path

import torch

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
           "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _unet_prefixes(config) -> dict[str, str]:
    """diffusers module prefix → LDM prefix, for the UNet (input / middle / output blocks)."""
    n, layers = len(config.block_out_channels), config.layers_per_block
    out = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
           "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
           "mid_block.resnets.0": "middle_block.0", "mid_block.attentions.0": "middle_block.1",
           "mid_block.resnets.1": "middle_block.2"}
    for i in range(n):
        for j in range(layers):
            block = (layers + 1) * i + j + 1
            out[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{block}.0"
            out[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{block}.1"
        if i < n - 1:
            out[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{(layers + 1) * (i + 1)}.0.op"
        has_attention = "CrossAttn" in config.up_block_types[i]
        for j in range(layers + 1):
            block = (layers + 1) * i + j
            out[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{block}.0"
            out[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{block}.1"
        if i < n - 1:
            out[f"up_blocks.{i}.upsamplers.0.conv"] = f"output_blocks.{(layers + 1) * i + layers}." \
                                                      f"{2 if has_attention else 1}.conv"
    return out


def _vae_prefixes(config) -> dict[str, str]:
    n, layers = len(config.block_out_channels), config.layers_per_block
    out = {}
    for side in ("encoder", "decoder"):
        out[f"{side}.mid_block.resnets.0"] = f"{side}.mid.block_1"
        out[f"{side}.mid_block.attentions.0"] = f"{side}.mid.attn_1"
        out[f"{side}.mid_block.resnets.1"] = f"{side}.mid.block_2"
        out[f"{side}.conv_norm_out"] = f"{side}.norm_out"
    for i in range(n):
        for j in range(layers):
            out[f"encoder.down_blocks.{i}.resnets.{j}"] = f"encoder.down.{i}.block.{j}"
        out[f"encoder.down_blocks.{i}.downsamplers.0.conv"] = f"encoder.down.{i}.downsample.conv"
        for j in range(layers + 1):  # LDM numbers the decoder's levels from the bottom up
            out[f"decoder.up_blocks.{i}.resnets.{j}"] = f"decoder.up.{n - 1 - i}.block.{j}"
        out[f"decoder.up_blocks.{i}.upsamplers.0.conv"] = f"decoder.up.{n - 1 - i}.upsample.conv"
    return out


def _rename(key: str, prefixes: dict[str, str], inner: dict[str, str]) -> str:
    for prefix in sorted(prefixes, key=len, reverse=True):  # the longest prefix that matches
        if key.startswith(prefix + "."):
            rest = key[len(prefix) + 1:]
            for a, b in inner.items():
                if rest.startswith(a + "."):
                    rest = b + rest[len(a):]
                    break
            return f"{prefixes[prefix]}.{rest}"
    return key


def ldm_state_dict(pipe) -> dict[str, torch.Tensor]:
    """The pipeline's UNet, VAE and text encoder as one original-format state dict."""
    state: dict[str, torch.Tensor] = {}
    unet_prefixes = _unet_prefixes(pipe.unet.config)
    for key, value in pipe.unet.state_dict().items():
        state["model.diffusion_model." + _rename(key, unet_prefixes, _RESNET)] = value
    vae_prefixes = _vae_prefixes(pipe.vae.config)
    for key, value in pipe.vae.state_dict().items():
        inner = _VAE_ATTN if ".attentions." in key else {"conv_shortcut": "nin_shortcut"}
        new = _rename(key, vae_prefixes, inner)
        if ".attn_1." in new and value.ndim == 2:  # LDM's VAE attention uses 1x1 convolutions
            value = value[:, :, None, None]
        state["first_stage_model." + new] = value
    for key, value in pipe.text_encoder.state_dict().items():  # the released files name the inner text_model
        state["cond_stage_model.transformer." + ("" if key.startswith("text_model.") else "text_model.") + key] = value
    return {k: v.detach().contiguous().clone() for k, v in state.items()}


def save_single_file(pipe, path: str | Path) -> Path:
    """Write ``pipe`` as one ``.safetensors`` (or, for a ``.ckpt`` path, a pickled ``{"state_dict": ...}``)."""
    path = Path(path)
    state = ldm_state_dict(pipe)
    if path.suffix == ".ckpt":
        torch.save({"state_dict": state}, path)
    else:
        from safetensors.torch import save_file

        save_file(state, str(path))
    return path
