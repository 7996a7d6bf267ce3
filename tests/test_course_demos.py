"""The effects the course's architecture demos state, on the shipped teaching models (notebooks 01 and 03).

Independent facts: where the object is comes from the rendered picture itself (its pixels that differ from the
known background colour), and which caption belongs to which scene comes from the scene generator.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import encode_images, encode_prompts, encode_text, render_frames
from helpers.backends import choose_backend
from helpers.teaching import scenes


def _cross_attention_maps(pipe, prompt, kwargs):
    """Cross-attention probabilities softmax(QK^T/sqrt(d)) of every attn2 layer, conditional rows, mean over
    heads and steps: {layer: (positions, tokens)}; plus the rendered frame."""
    maps: dict[str, list[torch.Tensor]] = {}

    class Capture:
        def __init__(self, name):
            self.name = name

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
            b, s, _ = hidden_states.shape
            q = attn.to_q(hidden_states).view(b, s, attn.heads, -1).transpose(1, 2)
            k = attn.to_k(encoder_hidden_states).view(b, -1, attn.heads, q.shape[-1]).transpose(1, 2)
            v = attn.to_v(encoder_hidden_states).view(b, -1, attn.heads, q.shape[-1]).transpose(1, 2)
            p = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
            maps.setdefault(self.name, []).append(p[-1].mean(0))  # the conditional row, mean over heads
            return attn.to_out[1](attn.to_out[0]((p @ v).transpose(1, 2).reshape(b, s, -1)))

    unet = pipe.unet
    saved = dict(unet.attn_processors)
    unet.set_attn_processor({n: Capture(n) if ".attn2." in n else p for n, p in saved.items()})
    try:
        embeds, negative = encode_prompts(pipe, [prompt])
        frame = render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=negative, seed=0, progress=False,
                              output_type="np", **kwargs)[0]
    finally:
        unet.set_attn_processor(saved)
    return {n: torch.stack(m).mean(0) for n, m in maps.items()}, frame


@pytest.mark.parametrize("obj, background", [("red apple", "blue"), ("rocket", "yellow"), ("cat face", "pink")])
def test_object_words_attend_to_the_object_and_background_words_to_the_background(obj, background) -> None:
    backend = choose_backend("teaching", "text2img", device="cpu")
    prompt = scenes.caption(obj, "big", background)
    maps, frame = _cross_attention_maps(backend.pipe, prompt, backend.render_kwargs())
    tokens = backend.pipe.tokenizer.convert_ids_to_tokens(backend.pipe.tokenizer(prompt).input_ids)
    drawn = np.abs(frame - np.array(scenes.BACKGROUNDS[background]) / 255).sum(-1) > 0.25  # the object's pixels
    coarse = [m for m in maps.values() if m.shape[0] == 16]  # the 4x4 layers
    assert coarse
    attention = torch.stack(coarse).mean(0)  # (16 positions, tokens)
    mask = drawn.reshape(4, 8, 4, 8).mean((1, 3)) > 0.5
    assert 0 < mask.mean() < 1

    def ratio(word):
        a = attention[:, tokens.index(f"{word}</w>")].reshape(4, 4).numpy()
        return a[mask].mean() / a[~mask].mean()

    last_word = obj.split()[-1]
    print(f"{prompt!r}: {last_word} {ratio(last_word):.2f}, {background} {ratio(background):.2f}")
    assert ratio(last_word) > 1.5  # the object's word looks at the object ...
    assert ratio(background) < 1.0  # ... the background's word away from it


def test_clip_pairs_each_scene_with_its_own_caption() -> None:
    backend = choose_backend("teaching", "unclip", device="cpu")
    names = ["red apple", "green apple", "cat face", "dog face", "sun", "rocket", "red heart", "blue heart"]
    images = encode_images(backend.pipe, backend.example_images(objects=names))
    texts = encode_text(backend.pipe, [scenes.caption(n, "big", "white") for n in names])
    sim = (images / images.norm(dim=-1, keepdim=True)) @ (texts / texts.norm(dim=-1, keepdim=True)).T
    target = torch.arange(len(names))
    assert torch.equal(sim.argmax(1), target) and torch.equal(sim.argmax(0), target)

    def loss(pairing):
        logits = sim / 0.07
        return 0.5 * float(torch.nn.functional.cross_entropy(logits, pairing)
                           + torch.nn.functional.cross_entropy(logits.T, pairing))

    assert loss(target) < np.log(len(names)) < loss(torch.roll(target, 1))  # better than chance, worse shuffled
