"""The teaching world (helpers.teaching.scenes): deterministic scenes, captions a tiny text encoder can learn,
a fixed split that holds out object-background pairs, pixels that match the ground truth, a checked atlas."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.teaching import scenes as S


@pytest.fixture
def fresh_atlas():
    """Clear the atlas caches before and after (a test may swap ``ATLAS_DIR``)."""
    S._atlas.cache_clear()
    S._glyph.cache_clear()
    yield
    S._atlas.cache_clear()
    S._glyph.cache_clear()


def _background_rgb(scene: S.Scene) -> torch.Tensor:
    return torch.tensor(S.BACKGROUNDS[scene.background], dtype=torch.float32)[:, None, None] / 255


def _box(scene: S.Scene) -> tuple[slice, slice]:
    px = S.SIZES[scene.size]
    return slice(scene.y, scene.y + px), slice(scene.x, scene.x + px)


def test_a_seed_gives_the_same_scenes_and_pixels_every_time():
    a, b = S.sample_scenes(64, seed=5), S.sample_scenes(64, seed=5)
    assert a == b
    assert torch.equal(S.render(a), S.render(b))
    other = S.sample_scenes(64, seed=6)
    assert other != a
    assert S.fresh_scenes(8, seed=1).scenes == S.fresh_scenes(8, seed=1).scenes
    assert S.fresh_scenes(8, seed=1).scenes != S.fresh_scenes(8, seed=2).scenes


def test_scenes_stay_inside_the_picture_and_use_every_object_size_and_background():
    scenes = S.sample_scenes(4_000, seed=0)
    assert all(0 <= s.x and 0 <= s.y and max(s.x, s.y) + S.SIZES[s.size] <= S.IMAGE_SIZE for s in scenes)
    assert {s.obj for s in scenes} == set(range(48))
    assert {s.size for s in scenes} == {"small", "big"}
    assert {s.background for s in scenes} == {"white", "pink", "blue", "green", "yellow"}


def test_captions_use_a_small_vocabulary_every_word_of_which_is_trained_often():
    train = S.load_split("train")
    training, full = train.captions(seed=0), train.captions()
    used = {w for caption in training + full for w in caption.split()}
    assert len(used) <= 80  # a vocabulary a tiny text encoder learns from 24,000 captions
    assert used == set(S.vocabulary())
    counts = Counter(w for caption in training for w in set(caption.split()))
    rare = {w: counts[w] for w in S.vocabulary() if counts[w] < 100}
    assert not rare, rare
    # the training captions sometimes leave out the size or the background, the full ones never
    assert any(" on a " not in c for c in training) and any(not ({"small", "big"} & set(c.split())) for c in training)
    assert all(" on a " in c and c.split()[1] in ("small", "big") for c in full)


def test_every_caption_fits_the_text_encoder():
    from helpers.teaching.text2img import MAX_TOKENS

    longest = max(len(c.split()) for c in S.all_captions())
    assert longest + 2 <= MAX_TOKENS  # one token per word (helpers.tokenizer) plus BOS and EOS


def test_the_held_out_split_holds_object_background_pairs_training_never_shows():
    train, held_out = S.load_split("train"), S.load_split("held_out")
    assert (len(train), len(held_out)) == (24_000, 1_000)
    seen = {(s.obj, s.background) for s in train.scenes}
    assert not any(s.background == S.held_out_background(s.obj) for s in train.scenes)
    unseen = [s for s in held_out.scenes if (s.obj, s.background) not in seen]
    assert 400 <= len(unseen) <= 600  # half of the held-out scenes
    assert all(s.background == S.held_out_background(s.obj) for s in unseen)
    assert torch.equal(held_out.unseen, torch.tensor([(s.obj, s.background) not in seen for s in held_out.scenes]))
    assert {S.held_out_background(i) for i in range(48)} == {"pink", "blue", "green", "yellow"}  # never white


def test_pixels_are_the_background_outside_the_object_and_the_glyph_inside():
    scenes = S.sample_scenes(200, seed=3)
    images = S.render(scenes)
    assert images.shape == (200, 3, 32, 32) and images.dtype == torch.float32
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    for scene, image in zip(scenes, images):
        bg = _background_rgb(scene)
        rows, cols = _box(scene)
        outside = torch.ones(32, 32, dtype=torch.bool)
        outside[rows, cols] = False
        assert torch.allclose(image[:, outside], bg.expand(3, 32, 32)[:, outside], atol=1e-6)
        inside = (image[:, rows, cols] - bg).abs().amax(dim=0) > 0.1
        assert inside.float().mean() > 0.2, scene  # the glyph covers a good part of its box


def test_the_same_object_looks_the_same_wherever_it_stands():
    a = S.Scene(S.object_index("fox face"), "big", "white", 0, 0)
    b = S.Scene(S.object_index("fox face"), "big", "white", 8, 5)
    x, y = S.render([a, b])
    torch.testing.assert_close(x[:, 0:24, 0:24], y[:, 5:29, 8:32])
    small, big = S.render([S.Scene(a.obj, "small", "white", 0, 0), a])
    assert (small - 1).abs().amax(dim=0).gt(0.1).sum() < (big - 1).abs().amax(dim=0).gt(0.1).sum()


def test_a_tampered_atlas_is_refused(tmp_path, monkeypatch, fresh_atlas):
    copy = tmp_path / "atlas"
    shutil.copytree(S.ATLAS_DIR, copy)
    png = copy / "emoji_atlas.png"
    sheet = np.array(Image.open(png).convert("RGBA"))
    sheet[10, 10] = 255 - sheet[10, 10]
    Image.fromarray(sheet).save(png)
    monkeypatch.setattr(S, "ATLAS_DIR", copy)
    with pytest.raises(RuntimeError, match="checksum"):
        S.render(S.sample_scenes(1, seed=0))


def test_an_atlas_of_other_objects_is_refused(tmp_path, monkeypatch, fresh_atlas):
    copy = tmp_path / "atlas"
    shutil.copytree(S.ATLAS_DIR, copy)
    info = json.loads((copy / "emoji_atlas.json").read_text(encoding="utf-8"))
    info["objects"][0], info["objects"][1] = info["objects"][1], info["objects"][0]
    (copy / "emoji_atlas.json").write_text(json.dumps(info), encoding="utf-8")
    monkeypatch.setattr(S, "ATLAS_DIR", copy)
    with pytest.raises(RuntimeError, match="other objects"):
        S.render(S.sample_scenes(1, seed=0))


def test_the_shipped_atlas_passes_its_check(fresh_atlas):
    atlas = S._atlas()
    assert atlas.shape == (48, 64, 64, 4) and atlas.dtype == np.uint8
    assert (atlas[..., 3] == 0).any(axis=(1, 2)).all()  # every glyph has a transparent surround
    assert (atlas[..., 3] == 255).any(axis=(1, 2)).all()  # and an opaque body


def test_example_scenes_are_big_objects_on_white():
    names = ["red apple", "green apple", "rocket"]
    ex = S.example_scenes(names)
    assert [s.name for s in ex.scenes] == names
    assert [s.size for s in ex.scenes] == ["big"] * 3 and [s.background for s in ex.scenes] == ["white"] * 3
    assert ex.sizes.tolist() == [1, 1, 1] and ex.backgrounds.tolist() == [0, 0, 0]
    assert ex.captions() == [f"a big {n} on a white background" for n in names]
    corners = ex.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert torch.equal(corners, torch.ones_like(corners))  # a 24-px glyph leaves the corners white
    assert torch.equal(S.example_scenes(names).images, ex.images)  # the same seed, the same pictures
    assert torch.equal(S.example_scenes([16, 17, "rocket"]).images, ex.images)  # names or indices (fruit: 16-23)


@pytest.mark.parametrize("call", [
    lambda: S.object_index("purple apple"),
    lambda: S.caption("purple apple"),
    lambda: S.example_scenes(["red apple", "purple apple"]),
])
def test_unknown_object_names_list_the_valid_ones(call):
    with pytest.raises(ValueError, match="purple apple") as info:
        call()
    assert all(name in str(info.value) for name in ("red apple", "green apple", "tractor", "grinning face"))


def test_caption_checks_size_and_background():
    assert S.caption("fox face") == "a fox face"
    assert S.caption("fox face", "small", "green") == "a small fox face on a green background"
    with pytest.raises(ValueError, match="small, big"):
        S.caption("fox face", "huge")
    with pytest.raises(ValueError, match="white, pink"):
        S.caption("fox face", background="red")
    with pytest.raises(ValueError, match="held_out"):
        S.load_split("test")


def test_scene_judge_loads_the_shipped_judge_without_fitting(monkeypatch):
    from helpers.teaching import judge as J

    def no_fit(*args, **kwargs):
        raise AssertionError("scene_judge() fitted a judge although one ships")

    J.scene_judge.cache_clear()
    monkeypatch.setattr(J.SceneJudge, "__init__", no_fit)
    try:
        judge = J.scene_judge()
        fresh = S.fresh_scenes(500, seed=77)
        assert (judge.predict(fresh.images) == fresh.objects.numpy()).mean() >= 0.97
        assert (judge.size_of(fresh.images) == fresh.sizes.numpy()).mean() >= 0.97
    finally:
        J.scene_judge.cache_clear()
