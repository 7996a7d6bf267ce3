"""A tiny CLIP for the teaching unCLIP: a transformers ``CLIPModel`` trained contrastively on the emoji scenes.

Introduced in notebook 03_unclip_image_interpolation. The text tower reads the project's CLIP-format tokenizer
(every caption word is one token); the vision tower is a small ViT on 32x32 RGB scenes (4x4 patches). Trained
on the fixed training split; its zero-shot object accuracy (argmax over ``"a <object>"`` for the 48 objects) is
measured on the held-out scenes. The unCLIP pipelines use the two halves separately, as
``CLIPTextModelWithProjection`` and ``CLIPVisionModelWithProjection``, with a ``CLIPImageProcessor`` set up for
32x32 inputs.

Many images fit one caption ("a red apple" fits every red apple), so the usual "diagonal" InfoNCE target would
call a matching caption a negative. The loss here knows the ground truth: caption *i* and image *j* are a
positive pair whenever the caption is true of the image, and each row's target is spread evenly over its
positives (both directions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGE_SIZE = 32
EMBED_DIM = 64  # = text hidden size: UnCLIPTextProjModel projects both with one `clip_embeddings_dim`
NORM_WEIGHT = 0.1  # keeps projected embeddings near unit norm, so raw and normalised embeddings agree


@dataclass
class TinyClip:
    """The trained halves the unCLIP pipeline needs."""

    text_encoder: object  # CLIPTextModelWithProjection
    image_encoder: object  # CLIPVisionModelWithProjection
    tokenizer: object  # CLIPTokenizer
    feature_extractor: object  # CLIPImageProcessor


def build_tokenizer(max_length: int = 12):
    """The project's CLIP tokenizer over every scene caption (the 54-word vocabulary)."""
    from helpers.teaching.scenes import all_captions
    from helpers.tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(all_captions(), model_max_length=max_length)


def image_processor_class():
    """``CLIPImageProcessorPil`` where transformers has it (the backend it falls back to without torchvision,
    chosen explicitly so it does not warn), else ``CLIPImageProcessor``."""
    try:
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


def build_image_processor():
    """A CLIP image processor for 32x32 scenes: no resizing beyond 32 px, pixels mapped [0, 1] → [-1, 1]."""
    return image_processor_class()(
        do_resize=True,
        size={"shortest_edge": IMAGE_SIZE},
        do_center_crop=True,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_convert_rgb=True,
    )


def build_clip_model(tokenizer, seed: int = 0):
    """An untrained tiny ``CLIPModel`` (≈0.6M parameters) matching ``tokenizer``."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        projection_dim=EMBED_DIM,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = CLIPVisionConfig(
        hidden_size=96,
        intermediate_size=192,
        projection_dim=EMBED_DIM,
        num_hidden_layers=4,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=4,
        num_channels=3,
    )
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=EMBED_DIM)
    torch.manual_seed(seed)
    model = CLIPModel(config)
    # With the default 0.02 init all captions start out almost identical and joint training can collapse to
    # one text vector; well-separated word embeddings at the start avoid that saddle.
    torch.nn.init.normal_(model.text_model.embeddings.token_embedding.weight, std=1.0)
    return model


def pixel_values(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, 32, 32) images in [0, 1] → CLIP pixel values, as :func:`build_image_processor` computes them."""
    return images * 2.0 - 1.0


def multi_positive_clip_loss(
    image_embeds: torch.Tensor, caption_embeds: torch.Tensor, positive: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric contrastive loss with ground-truth positives (see the module docstring).

    ``image_embeds`` (B, D), ``caption_embeds`` (C, D) (normalised here) and ``positive`` (C, B) bool: caption
    *i* is true of image *j*. Every image and every caption must have at least one positive.
    """
    img = F.normalize(image_embeds, dim=-1)
    txt = F.normalize(caption_embeds, dim=-1)
    logits = logit_scale * txt @ img.T  # (C, B)
    target = positive.float()
    loss_texts = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    target_t = target.T
    loss_images = -(target_t / target_t.sum(1, keepdim=True) * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return 0.5 * (loss_images + loss_texts)


def caption_fits(scene, name: str, size: str | None, background: str | None) -> bool:
    """Whether a caption (object name, optional size and background) is true of a scene."""
    return scene.name == name and size in (None, scene.size) and background in (None, scene.background)


def _norm_penalty(*embeds: torch.Tensor) -> torch.Tensor:
    return sum(((e.norm(dim=-1) - 1.0) ** 2).mean() for e in embeds)


def train_tiny_clip(
    *, steps: int = 1500, batch_size: int = 128, lr: float = 2e-3, seed: int = 0, progress: bool = True
):
    """Train the tiny CLIP on the training scenes; returns ``(CLIPModel, tokenizer)``.

    Each step pairs ``batch_size`` scenes with one caption each (size / background left out at random, as in
    the text-to-image training) and scores every caption against every image with the ground truth.
    """
    import numpy as np
    from tqdm.auto import tqdm

    from helpers.teaching.common import cosine_schedule
    from helpers.teaching.scenes import DROP_BACKGROUND, DROP_SIZE, load_split

    tokenizer = build_tokenizer()
    model = build_clip_model(tokenizer, seed=seed)
    model.train()
    train = load_split("train")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = cosine_schedule(opt, steps, 0.1)
    for _ in tqdm(range(steps), desc="tiny CLIP", disable=not progress):
        idx = torch.randint(0, len(train), (batch_size,), generator=generator)
        scenes = [train.scenes[int(i)] for i in idx]
        keep = rng.random((batch_size, 2)) >= (DROP_SIZE, DROP_BACKGROUND)
        parts = [(s.name, s.size if k[0] else None, s.background if k[1] else None) for s, k in zip(scenes, keep)]
        captions = [s.caption(size=bool(k[0]), background=bool(k[1])) for s, k in zip(scenes, keep)]
        positive = torch.tensor([[caption_fits(s, *p) for s in scenes] for p in parts])
        tokens = tokenizer(captions, padding="max_length", return_tensors="pt")
        image_embeds = model.get_image_features(pixel_values=pixel_values(train.images[idx]))
        text_embeds = model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
        image_embeds = getattr(image_embeds, "pooler_output", image_embeds)
        text_embeds = getattr(text_embeds, "pooler_output", text_embeds)
        loss = multi_positive_clip_loss(image_embeds, text_embeds, positive, model.logit_scale.exp().clamp(max=100))
        loss = loss + NORM_WEIGHT * _norm_penalty(image_embeds, text_embeds)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model, tokenizer


def split_clip(model, tokenizer) -> TinyClip:
    """The text and vision halves of a ``CLIPModel`` as the ``...WithProjection`` models unCLIP expects."""
    from transformers import CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    state = model.state_dict()
    text = CLIPTextModelWithProjection(model.config.text_config)
    vision = CLIPVisionModelWithProjection(model.config.vision_config)
    for half in (text, vision):
        keys = half.state_dict().keys()
        half.load_state_dict({k: state[k] for k in keys}, strict=True)
        half.eval()
    return TinyClip(text, vision, tokenizer, build_image_processor())


@torch.no_grad()
def caption_embeddings(text_encoder, tokenizer, captions: Sequence[str]) -> torch.Tensor:
    """Projected CLIP text embeddings (N, D) of ``captions``."""
    tokens = tokenizer(list(captions), padding="max_length", return_tensors="pt")
    device = next(text_encoder.parameters()).device
    return text_encoder(input_ids=tokens.input_ids.to(device), attention_mask=tokens.attention_mask.to(device)).text_embeds


@torch.no_grad()
def zero_shot_predict(text_encoder, image_encoder, tokenizer, images: torch.Tensor,
                      captions: Sequence[str] | None = None) -> torch.Tensor:
    """Index (N,) of the best caption for (N, 3, 32, 32) images in [0, 1]: argmax cosine over ``captions``
    (default: ``"a <object>"`` for the 48 objects, so the index is the object)."""
    from helpers.teaching.scenes import OBJECT_NAMES, caption

    captions = [caption(n) for n in OBJECT_NAMES] if captions is None else list(captions)
    txt = F.normalize(caption_embeddings(text_encoder, tokenizer, captions), dim=-1)
    device = next(image_encoder.parameters()).device
    img = image_encoder(pixel_values=pixel_values(images).to(device)).image_embeds
    return (F.normalize(img, dim=-1) @ txt.T).argmax(dim=-1).cpu()
