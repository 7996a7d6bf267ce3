"""helpers.diagrams: the block diagrams name every part and every flow, once each."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

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
