"""helpers.diagrams: the block diagrams name every part and every flow, once each."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from helpers import diagrams  # noqa: E402


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize(("draw", "parts", "flows", "n_arrows"), [
    (diagrams.latent_diffusion, ["tokenizer", "CLIP text\nencoder", "VAE decoder", "noise $x_T$"],
     ["token ids", "text embeddings", "latent $x_t$", "noise $\\hat\\varepsilon$", "$x_{t-1}$: the next step"], 8),
    (diagrams.unclip, ["diffusion\nprior", "CLIP image\nencoder", "upsamplers\n(super-res)"],
     ["text embedding $z_t$", "image embedding $z_i$", "small picture"], 7),
])
def test_diagrams_name_their_parts_and_flows(draw, parts, flows, n_arrows):
    fig = draw()
    texts = _texts(fig)
    assert all(p in texts for p in parts) and all(f in texts for f in flows)
    arrows = [p for ax in fig.axes for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == n_arrows


def test_shapes_replace_the_flow_labels_and_bad_arrows_are_refused():
    fig = diagrams.latent_diffusion({"latent": "(1, 8, 8, 8)", "text": "(1, 12, 64)"})
    assert "(1, 8, 8, 8)" in _texts(fig) and "latent $x_t$" not in _texts(fig)
    with pytest.raises(ValueError, match="do not exist"):
        diagrams.draw({"a": diagrams.Box("a", 0, 0)}, [("a", "b", "")], title="x")



def _points_along(path, per_segment: int = 20) -> np.ndarray:
    """Points every few pixels along a path's lines and curves (its outline, the arrow head included)."""
    out = []
    for poly in path.to_polygons(closed_only=False):
        for p, q in zip(poly[:-1], poly[1:]):
            out.append(p + np.linspace(0, 1, per_segment)[:, None] * (q - p))
    return np.concatenate(out)


@pytest.mark.parametrize(("draw", "shapes", "n_labels"), [
    (diagrams.latent_diffusion, {"tokens": "token ids (1, 12)", "text": "text embeddings (1, 12, 64)",
                                 "latent": "latent (1, 8, 8, 8)", "image": "image (1, 3, 32, 32)"}, 7),
    (diagrams.latent_diffusion, {"tokens": "token ids (1, 77)", "text": "text embeddings (1, 77, 768)",
                                 "latent": "latent (1, 4, 64, 64)", "image": "image (1, 3, 512, 512)"}, 7),
    (diagrams.unclip, None, 5),
])
def test_arrow_labels_cross_no_box_and_no_arrow(draw, shapes, n_labels):
    """Measured on the rendered figure: every flow label is clear of every box, arrow and other label, and
    inside the figure (long shapes such as SD 1.5's included)."""
    from matplotlib.patches import FancyBboxPatch

    fig = draw(shapes)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    box_extents = [p.get_window_extent(renderer) for p in boxes]
    arrow_points = [_points_along(a.get_transform().transform_path(a.get_path())) for a in arrows]  # pixels
    labels = [t for t in ax.texts if not any(b.contains_point(ax.transData.transform(t.get_position()))
                                             for b in boxes)]
    assert len(labels) == n_labels  # the arrows from the prompt (caption, picture) have none
    extents = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
    for i, (name, e) in enumerate(extents):
        assert not any(e.overlaps(b) for b in box_extents), f"{name!r} runs over a box"
        assert not any(e.contains(x, y) for pts in arrow_points for x, y in pts), f"{name!r} crosses an arrow"
        assert not any(e.overlaps(o) for j, (_, o) in enumerate(extents) if j != i), f"{name!r} overlaps a label"
        assert fig.bbox.contains(e.x0, e.y0) and fig.bbox.contains(e.x1, e.y1), f"{name!r} is cut off"


def test_the_attention_diagram_draws_every_mode_the_morph_has():
    from helpers.morph import ATTENTION_MODES

    assert diagrams.ATTENTION_MODES == ATTENTION_MODES
    fig = diagrams.attention_interpolation()
    assert [ax.get_title().split(" ")[0].rstrip(":") for ax in fig.axes] == list(ATTENTION_MODES)
    for ax in fig.axes:
        texts = [t.get_text() for t in ax.texts]
        assert "$K_A, V_A$" in texts and "$K_B, V_B$" in texts and any(t.startswith("$Q_\\lambda$") for t in texts)
        assert len([p for p in ax.patches if isinstance(p, FancyArrowPatch)]) == 5
    # inner and fused mix the keys and values before attending; outer attends to A and B, then mixes the outputs
    panel = dict(zip(ATTENTION_MODES, fig.axes))
    assert "$K_{mix}, V_{mix}$" in [t.get_text() for t in panel["inner"].texts]
    assert "$O_A, O_B$" in [t.get_text() for t in panel["outer"].texts]
    assert any("own $K_\\lambda, V_\\lambda$" in t.get_text() for t in panel["fused"].texts)
    assert len(diagrams.attention_interpolation("outer").axes) == 1
    for bad in ("middle", [], ["inner", "both"]):
        with pytest.raises(ValueError, match="modes must be"):
            diagrams.attention_interpolation(bad)


def test_the_attention_diagram_keeps_its_texts_apart():
    """Measured on the rendered figure: each box's text lies inside its box, and each arrow's label is clear of
    every box, arrow and other text, and inside the figure."""
    from matplotlib.patches import FancyBboxPatch

    fig = diagrams.attention_interpolation()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
        arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
        arrow_points = [_points_along(a.get_transform().transform_path(a.get_path())) for a in arrows]
        texts = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]
        inside = [(name, e) for name, e in texts if any(b.contains(*e.p0) for b in boxes)]
        labels = [(name, e) for name, e in texts if (name, e) not in inside]
        assert len(inside) == 6 and len(labels) == 5  # 6 boxes; 4 labelled arrows and the batch's name
        for name, e in inside:
            assert any(b.contains(*e.p0) and b.contains(*e.p1) for b in boxes), f"{name!r} sticks out of its box"
        for name, e in labels:
            assert not any(e.overlaps(b) for b in boxes), f"{name!r} runs over a box"
            assert not any(e.contains(x, y) for pts in arrow_points for x, y in pts), f"{name!r} crosses an arrow"
            assert not any(e.overlaps(o) for j, (_, o) in enumerate(texts) if o is not e), f"{name!r} overlaps a text"
            assert fig.bbox.contains(*e.p0) and fig.bbox.contains(*e.p1), f"{name!r} is cut off"


@pytest.mark.parametrize("draw", [diagrams.latent_diffusion, diagrams.unclip])
def test_no_empty_band_below_the_drawing(draw):
    """Measured on the rendered figure: what is drawn (boxes, arrows, labels) reaches down to near the axes'
    bottom, so the picture has no empty lower part (room below is kept only for a loop back and its label)."""
    fig = draw()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    frame = ax.get_window_extent(renderer)
    lowest = min(a.get_window_extent(renderer).y0 for a in [*ax.patches, *ax.texts])
    assert lowest - frame.y0 < 0.15 * frame.height
