"""Quality of the shipped teaching unCLIP (tiny CLIP + decoder + super-res), judged on held-out digits.

The judge is the project's logistic-regression digit classifier (≈97% on real held-out digits), fitted on the
training split; every check uses the 300 held-out digits the models never saw. CPU, no downloads.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.embeddings import encode_images, encode_text
from helpers.interpolation import slerp, text_diff
from helpers.teaching.clip_model import pixel_values, zero_shot_predict
from helpers.teaching.data import CAPTIONS, DigitClassifier, caption, load_split
from helpers.teaching.unclip_model import WEIGHTS_DIR, load_teaching_unclip, train_teaching_unclip
from helpers.unclip import decode, invert


@pytest.fixture(scope="module")
def pipe():
    return load_teaching_unclip()


@pytest.fixture(scope="module")
def judge():
    return DigitClassifier()


@pytest.fixture(scope="module")
def held_out():
    return load_split("held_out")


def _per_class(held_out, k: int) -> torch.Tensor:
    """Indices of the first ``k`` held-out digits of each class (10k in all)."""
    labels = held_out.labels.numpy()
    return torch.as_tensor(np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(10)]))


def _noise(pipe, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    d, s = pipe.decoder.config, pipe.super_res_first.config
    return (torch.randn((n, d.in_channels, d.sample_size, d.sample_size), generator=g),
            torch.randn((n, s.in_channels // 2, s.sample_size, s.sample_size), generator=g))


def test_shipped_folder_is_small_and_safetensors():
    files = [p for p in WEIGHTS_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 8 * 2**20
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    info = json.loads((WEIGHTS_DIR / "training.json").read_text())
    assert info["smoke"] is False


def test_tiny_clip_zero_shot_on_held_out(pipe, held_out):
    pred = zero_shot_predict(pipe.text_encoder, pipe.image_encoder, pipe.tokenizer, held_out.images)
    accuracy = float((pred == held_out.labels).float().mean())
    assert accuracy >= 0.90, accuracy


def test_pipeline_preprocessing_matches_training(pipe, held_out):
    # The feature extractor (PIL path, uint8) must give what the CLIP was trained on, up to 8-bit rounding.
    x = held_out.images[:8]
    via_pipeline = encode_images(pipe, x)
    with torch.no_grad():
        direct = pipe.image_encoder(pixel_values=pixel_values(x)).image_embeds
    cos = torch.nn.functional.cosine_similarity(via_pipeline, direct, dim=-1)
    assert float(cos.min()) > 0.99


GUIDANCE = 4.0  # the decoder guidance scale that measured best for decoding from fresh noise


def test_decode_of_encoding_keeps_the_class(pipe, held_out, judge):
    idx = _per_class(held_out, 10)
    emb = encode_images(pipe, held_out.images[idx])
    dec, sr = _noise(pipe, len(idx), seed=0)
    images = decode(pipe, emb, dec, sr, guidance_scale=GUIDANCE)
    kept = float((judge.predict(images) == held_out.labels[idx].numpy()).mean())
    assert kept >= 0.90, kept


def test_stock_pipeline_call_runs(pipe, held_out):
    # The unmodified pipeline (stochastic UnCLIPScheduler, learned variance, default guidance) works too.
    out = pipe(image=held_out.images[:2] * 2 - 1, decoder_num_inference_steps=4, super_res_num_inference_steps=2,
               generator=torch.Generator().manual_seed(0), output_type="np")
    assert out.images.shape == (2, 32, 32, 3) and np.isfinite(out.images).all()


def test_inversion_then_decoding_reconstructs(pipe, held_out):
    idx = _per_class(held_out, 2)
    x = held_out.images[idx]
    inv = invert(pipe, x)
    rec = decode(pipe, inv.image_embeddings, inv.decoder_latents, inv.super_res_latents)
    mse = float(((rec - x) ** 2).mean())
    assert mse <= 0.01, mse


def test_slerp_from_a_three_to_an_eight(pipe, held_out, judge):
    # Endpoints: held-out digits the judge itself is sure of (it gives P(8) > 0.8 to only 13 of the 30 real
    # eights; we take P(8) > 0.9 so reconstructions have a margin), so the check measures the walk, not the
    # judge. Each seed draws one pair.
    labels, p8_real = held_out.labels.numpy(), judge.predict_proba(held_out.images)[:, 8]
    threes = np.flatnonzero((labels == 3) & (p8_real < 0.2))
    eights = np.flatnonzero((labels == 8) & (p8_real > 0.9))
    t = np.linspace(0, 1, 9, dtype=np.float32)
    pairs = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        pairs.append((rng.choice(threes), rng.choice(eights)))
    x = held_out.images[[i for pair in pairs for i in pair]]
    inv = invert(pipe, x)
    frames = {"emb": [], "dec": [], "sr": []}
    for k in range(10):
        a, b = 2 * k, 2 * k + 1
        frames["emb"].append(slerp(inv.image_embeddings[a], inv.image_embeddings[b], t))
        frames["dec"].append(slerp(inv.decoder_latents[a], inv.decoder_latents[b], t))
        frames["sr"].append(slerp(inv.super_res_latents[a], inv.super_res_latents[b], t))
    images = decode(pipe, *(torch.cat(frames[key]) for key in ("emb", "dec", "sr")))
    p8 = judge.predict_proba(images)[:, 8].reshape(10, 9)
    good = int(((p8[:, 0] < 0.2) & (p8[:, -1] > 0.8)).sum())
    assert good >= 8, p8[:, [0, -1]]
    # The walk goes somewhere: the middle frame is neither endpoint.
    mid, first, last = images[4::9], images[0::9], images[8::9]
    assert float(((mid - first) ** 2).mean()) > 0.005 and float(((mid - last) ** 2).mean()) > 0.005


def test_text_diff_moves_a_three_towards_an_eight(pipe, held_out, judge):
    idx = np.flatnonzero(held_out.labels.numpy() == 3)[:8]
    emb = encode_images(pipe, held_out.images[idx])
    z8, z3 = encode_text(pipe, [caption(8), caption(3)])
    thetas = [0.0, 0.25, 0.5]
    path = text_diff(emb, z8, z3, thetas)  # (3, 8, D)
    assert path.shape == (3, len(idx), emb.shape[-1]) and torch.isfinite(path).all()
    torch.testing.assert_close(path.norm(dim=-1), emb.norm(dim=-1).expand(3, -1), rtol=1e-4, atol=1e-5)
    dec, sr = _noise(pipe, 1, seed=0)
    images = decode(pipe, path.reshape(-1, emb.shape[-1]), dec, sr)
    assert torch.isfinite(images).all() and images.shape == (3 * len(idx), 3, 32, 32)
    p8 = judge.predict_proba(images)[:, 8].reshape(3, len(idx)).mean(axis=1)
    assert p8[-1] > p8[0] + 0.2, p8


def test_text_embeddings_point_at_their_digits(pipe, held_out):
    # CLIP's shared space: each caption's text embedding is closest to the mean image embedding of its class.
    text = torch.nn.functional.normalize(encode_text(pipe, list(CAPTIONS)), dim=-1)
    idx = _per_class(held_out, 10)
    img = torch.nn.functional.normalize(encode_images(pipe, held_out.images[idx]), dim=-1)
    centroids = torch.stack([img[10 * c : 10 * c + 10].mean(0) for c in range(10)])
    assert torch.equal((text @ centroids.T).argmax(dim=1), torch.arange(10))


def test_variations_differ_but_keep_the_class(pipe, held_out, judge):
    idx = _per_class(held_out, 3)
    x = held_out.images[idx]
    inv = invert(pipe, x)
    gens = [torch.Generator().manual_seed(100 + i) for i in range(len(idx))]
    var = decode(pipe, inv.image_embeddings, inv.decoder_latents, inv.super_res_latents, eta=1.0, generator=gens)
    per_image = ((var - x) ** 2).mean(dim=(1, 2, 3))
    assert float(per_image.min()) > 1e-3  # every variation differs from its input
    kept = float((judge.predict(var) == held_out.labels[idx].numpy()).mean())
    assert kept >= 0.75, kept


def test_smoke_training_writes_a_loadable_pipeline(tmp_path):
    out = train_teaching_unclip(tmp_path / "teaching-unclip", smoke=True, seed=0, progress=False)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary folder left behind
    pipe = load_teaching_unclip(path=out)
    emb = encode_images(pipe, load_split("held_out").images[:2])
    dec, sr = _noise(pipe, 2, seed=0)
    images = decode(pipe, emb, dec, sr, num_inference_steps=2, super_res_num_inference_steps=2)
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="teaching-unCLIP"):
        load_teaching_unclip(path=tmp_path)
