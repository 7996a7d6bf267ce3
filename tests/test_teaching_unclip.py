"""The shipped teaching unCLIP (tiny CLIP, decoder, super-res and diffusion prior) as stock diffusers pipelines.

Its quality gates (zero-shot CLIP, decode(encode(x)), inversion, prior) are in ``test_teaching_quality.py``;
here: the pieces fit together as Karlo's do, and the interpolation lessons' operations behave on real scenes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.embeddings import encode_images, encode_text
from helpers.interpolation import text_diff
from helpers.teaching import scenes as S
from helpers.teaching.clip_model import pixel_values
from helpers.teaching.train import FOLDERS, train_models
from helpers.teaching.unclip_model import WEIGHTS_DIR, load_teaching_unclip
from helpers.unclip import decode, invert

pytestmark = pytest.mark.slow  # the shipped unCLIP's quality, with a judge fitted first: left out of `make test-fast`


@pytest.fixture(scope="module")
def pipe():
    return load_teaching_unclip()


@pytest.fixture(scope="module")
def judge():
    from helpers.teaching.judge import SceneJudge

    return SceneJudge(0)  # fitted here, on fresh ground-truth scenes


def _noise(pipe, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    d, s = pipe.decoder.config, pipe.super_res_first.config
    return (torch.randn((n, d.in_channels, d.sample_size, d.sample_size), generator=g),
            torch.randn((n, s.in_channels // 2, s.sample_size, s.sample_size), generator=g))


def test_shipped_folder_is_safetensors_from_a_full_run():
    files = [p for p in WEIGHTS_DIR.rglob("*") if p.is_file()]
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    info = json.loads((WEIGHTS_DIR / "training.json").read_text())
    assert info["smoke"] is False


def test_pipeline_preprocessing_matches_training(pipe):
    # The feature extractor (PIL path, uint8) must give what the CLIP was trained on, up to 8-bit rounding.
    x = S.load_split("held_out").images[:8]
    via_pipeline = encode_images(pipe, x)
    with torch.no_grad():
        direct = pipe.image_encoder(pixel_values=pixel_values(x)).image_embeds
    cos = torch.nn.functional.cosine_similarity(via_pipeline, direct, dim=-1)
    assert float(cos.min()) > 0.99


def test_stock_pipeline_calls_run():
    # The unmodified pipelines (stochastic UnCLIPScheduler, learned variance, default guidance) work too.
    x = S.load_split("held_out").images[:2]
    out = load_teaching_unclip()(image=x * 2 - 1, decoder_num_inference_steps=4, super_res_num_inference_steps=2,
                                 generator=torch.Generator().manual_seed(0), output_type="np")
    assert out.images.shape == (2, 32, 32, 3) and np.isfinite(out.images).all()
    text = load_teaching_unclip(text=True)
    out = text(prompt=["a big red apple", "a small rocket"], prior_num_inference_steps=4,
               decoder_num_inference_steps=4, super_res_num_inference_steps=2,
               generator=torch.Generator().manual_seed(0), output_type="np")
    assert out.images.shape == (2, 32, 32, 3) and np.isfinite(out.images).all()


def test_text_embeddings_point_at_their_objects(pipe):
    # CLIP's shared space: each object's caption is closest to the mean image embedding of that object.
    held = S.load_split("held_out")
    img = torch.nn.functional.normalize(encode_images(pipe, held.images), dim=-1)
    centroids = torch.stack([img[held.objects == k].mean(0) for k in range(len(S.OBJECTS))])
    text = torch.nn.functional.normalize(encode_text(pipe, [S.caption(n) for n in S.OBJECT_NAMES]), dim=-1)
    hits = (text @ centroids.T).argmax(dim=1) == torch.arange(len(S.OBJECTS))
    assert float(hits.float().mean()) >= 0.9


def test_text_diff_moves_an_apple_from_red_to_green(pipe, judge):
    x = S.example_scenes(["red apple"] * 6, seed=3).images
    emb = encode_images(pipe, x)
    z_green, z_red = encode_text(pipe, [S.caption("green apple"), S.caption("red apple")])
    fracs = [0.0, 0.25, 0.5]
    path = text_diff(emb, z_green, z_red, fracs)  # (3, 6, D)
    assert path.shape == (3, len(x), emb.shape[-1]) and torch.isfinite(path).all()
    torch.testing.assert_close(path.norm(dim=-1), emb.norm(dim=-1).expand(3, -1), rtol=1e-4, atol=1e-5)
    inv = invert(pipe, x, emb)
    images = decode(pipe, path.reshape(-1, emb.shape[-1]), inv.decoder_latents.repeat(3, 1, 1, 1),
                    inv.super_res_latents.repeat(3, 1, 1, 1))
    p = judge.predict_proba(images)[:, S.object_index("green apple")].reshape(3, len(x)).mean(axis=1)
    print(f"\ntext diff red → green apple, mean P(green apple) at λ = {fracs}: {np.round(p, 2).tolist()}")
    assert p[-1] > p[0] + 0.2, p


def test_variations_differ_but_keep_the_object(pipe, judge):
    held = S.load_split("held_out")
    x = held.images[:24]
    inv = invert(pipe, x)
    gens = [torch.Generator().manual_seed(100 + i) for i in range(len(x))]
    var = decode(pipe, inv.image_embeddings, inv.decoder_latents, inv.super_res_latents, eta=1.0, generator=gens)
    per_image = ((var - x) ** 2).mean(dim=(1, 2, 3))
    assert float(per_image.min()) > 1e-3  # every variation differs from its input
    kept = float((judge.predict(var) == held.objects[:24].numpy()).mean())
    print(f"\nvariations (eta = 1) keep the object for {kept:.2f}")
    assert kept >= 0.75, kept


def test_smoke_training_writes_loadable_pipelines(tmp_path):
    train_models("unclip", out=tmp_path, smoke=True, progress=False)
    out = tmp_path / FOLDERS["unclip"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary folder left behind
    pipe = load_teaching_unclip(path=out)
    emb = encode_images(pipe, S.load_split("held_out").images[:2])
    dec, sr = _noise(pipe, 2, seed=0)
    images = decode(pipe, emb, dec, sr, num_inference_steps=2, super_res_num_inference_steps=2)
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()
    text = load_teaching_unclip(path=out, text=True)
    assert type(text).__name__ == "UnCLIPPipeline" and text.prior.config.embedding_dim == emb.shape[-1]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="teaching-unCLIP"):
        load_teaching_unclip(path=tmp_path)
