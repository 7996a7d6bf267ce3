"""A tiny CLIP for the teaching unCLIP: a transformers ``CLIPModel`` trained contrastively on the digits.

Introduced in notebook 03_unclip_image_interpolation. The text tower reads the project's CLIP-format tokenizer
(every caption word is one token); the vision tower is a small ViT on 32x32 RGB digits (4x4 patches). Trained
on the fixed training split; its zero-shot accuracy (argmax over the ten captions) is measured on the 300
held-out digits. The unCLIP pipeline uses the two halves separately, as ``CLIPTextModelWithProjection`` and
``CLIPVisionModelWithProjection``, with a ``CLIPImageProcessor`` set up for 32x32 inputs.

Duplicate captions: with only ten distinct captions a batch holds many copies of each, so the usual
"diagonal" InfoNCE target would call a matching caption a negative. The loss here is class-aware: each image is
scored against the ten distinct captions (cross-entropy to its own), and each caption against the images of the
batch with a target spread evenly over all images of its class.
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


def build_tokenizer(max_length: int = 8):
    """The project's CLIP tokenizer over the ten digit captions (plus a few extra words for text diffs)."""
    from helpers.teaching.data import CAPTIONS
    from helpers.tokenizer import build_clip_tokenizer

    corpus = list(CAPTIONS) + ["a photo of a digit", "handwritten digit"]
    return build_clip_tokenizer(corpus, model_max_length=max_length)


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
    """A CLIP image processor for 32x32 digits: no resizing beyond 32 px, pixels mapped [0, 1] → [-1, 1]."""
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
    """An untrained tiny ``CLIPModel`` (≈0.3M parameters) matching ``tokenizer``."""
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
        hidden_size=64,
        intermediate_size=128,
        projection_dim=EMBED_DIM,
        num_hidden_layers=3,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=4,
        num_channels=3,
    )
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=EMBED_DIM)
    torch.manual_seed(seed)
    model = CLIPModel(config)
    # With the default 0.02 init the ten captions start out almost identical and joint training collapses to
    # one text vector; well-separated word embeddings at the start avoid that saddle.
    torch.nn.init.normal_(model.text_model.embeddings.token_embedding.weight, std=1.0)
    return model


def pixel_values(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, 32, 32) images in [0, 1] → CLIP pixel values, as :func:`build_image_processor` computes them."""
    return images * 2.0 - 1.0


def _augment(images: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random integer shifts of up to ``max_shift`` pixels (zero padding), per image."""
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    crops = [padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)]
    return torch.stack(crops)


def class_aware_clip_loss(
    image_embeds: torch.Tensor, caption_embeds: torch.Tensor, labels: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric contrastive loss with ten distinct captions (see the module docstring).

    ``image_embeds`` (B, D) and ``caption_embeds`` (10, D) are normalised here; ``labels`` (B,) index captions.
    """
    img = F.normalize(image_embeds, dim=-1)
    txt = F.normalize(caption_embeds, dim=-1)
    logits = logit_scale * img @ txt.T  # (B, 10)
    loss_images = F.cross_entropy(logits, labels)
    present = torch.unique(labels)
    target = (labels[None, :] == present[:, None]).float()
    target = target / target.sum(dim=1, keepdim=True)
    loss_texts = -(target * F.log_softmax(logits.T[present], dim=1)).sum(dim=1).mean()
    return 0.5 * (loss_images + loss_texts)


def warmup_cosine(opt: torch.optim.Optimizer, steps: int, warmup: float = 0.05):
    """Linear warm-up over ``warmup`` of the steps, then cosine decay to zero (any ``steps`` ≥ 1)."""
    import math

    warm = max(1, int(warmup * steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, steps - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _norm_penalty(*embeds: torch.Tensor) -> torch.Tensor:
    return sum(((e.norm(dim=-1) - 1.0) ** 2).mean() for e in embeds)


def train_tiny_clip(
    *, steps: int = 600, batch_size: int = 128, lr: float = 2e-3, seed: int = 0, progress: bool = True
):
    """Train the tiny CLIP on the training split; returns ``(CLIPModel, tokenizer)``."""
    from tqdm.auto import tqdm

    from helpers.teaching.data import CAPTIONS, load_split

    tokenizer = build_tokenizer()
    model = build_clip_model(tokenizer, seed=seed)
    model.train()
    train = load_split("train")
    tokens = tokenizer(list(CAPTIONS), padding="max_length", return_tensors="pt")
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = warmup_cosine(opt, steps, 0.1)
    for _ in tqdm(range(steps), desc="tiny CLIP", disable=not progress):
        idx = torch.randint(0, len(train), (batch_size,), generator=generator)
        images = _augment(train.images[idx], generator)
        labels = train.labels[idx]
        image_embeds = model.get_image_features(pixel_values=pixel_values(images))
        text_embeds = model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
        image_embeds = getattr(image_embeds, "pooler_output", image_embeds)
        text_embeds = getattr(text_embeds, "pooler_output", text_embeds)
        loss = class_aware_clip_loss(image_embeds, text_embeds, labels, model.logit_scale.exp().clamp(max=100))
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
def zero_shot_predict(text_encoder, image_encoder, tokenizer, images: torch.Tensor) -> torch.Tensor:
    """Predicted digit (N,) for (N, 3, 32, 32) images in [0, 1]: argmax cosine over the ten captions."""
    from helpers.teaching.data import CAPTIONS

    txt = F.normalize(caption_embeddings(text_encoder, tokenizer, CAPTIONS), dim=-1)
    device = next(image_encoder.parameters()).device
    img = image_encoder(pixel_values=pixel_values(images).to(device)).image_embeds
    return (F.normalize(img, dim=-1) @ txt.T).argmax(dim=-1).cpu()
