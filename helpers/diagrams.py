"""Block diagrams of the architectures the course walks through, drawn with matplotlib.

Introduced in notebook 01_diffusion_basics (latent diffusion), 03_unclip_image_interpolation (unCLIP) and
08_morph_your_own_images (attention interpolation). Each function returns a ``matplotlib.figure.Figure``: boxes
for the parts, arrows for what flows between them, labelled with the tensor each arrow carries. Shapes are
optional annotations, so a notebook can print the backend's real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ATTENTION_MODES", "Box", "attention_interpolation", "draw", "latent_diffusion", "unclip"]

#: The modes :func:`attention_interpolation` draws: those of :class:`helpers.morph.AttentionInterpolation`.
ATTENTION_MODES = ("inner", "outer", "fused")


@dataclass(frozen=True)
class Box:
    """One part of a diagram: its label, centre (x, y) in axis units, and colour.

    Introduced in notebook 01_diffusion_basics.
    """

    label: str
    x: float
    y: float
    colour: str = "#dde8f5"


def _edge(box: Box, towards: Box, half: tuple[float, float]) -> tuple[float, float]:
    """Where the line from ``box``'s centre towards ``towards``'s centre leaves ``box``."""
    dx, dy = towards.x - box.x, towards.y - box.y
    scale = min(half[0] / abs(dx) if dx else float("inf"), half[1] / abs(dy) if dy else float("inf"))
    return box.x + scale * dx, box.y + scale * dy


def draw(boxes: dict[str, Box], arrows: list[tuple[str, str, str]], *, title: str, size=(11, 4.2)) -> Any:
    """A figure with ``boxes`` and labelled ``arrows`` ``(from, to, label)`` between them; an arrow from a box
    to one on its left is drawn as a loop below (the sampler's steps).

    Introduced in notebook 01_diffusion_basics.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    unknown = sorted({a for a, b, _ in arrows for a in (a, b)} - set(boxes))
    if unknown:
        raise ValueError(f"arrows name boxes that do not exist: {unknown}")
    fig, ax = plt.subplots(figsize=size)
    width, height = 1.8, 0.8
    half = (width / 2 + 0.06, height / 2 + 0.06)
    patches = []
    for box in boxes.values():
        patches.append(FancyBboxPatch((box.x - width / 2, box.y - height / 2), width, height,
                                      boxstyle="round,pad=0.05", facecolor=box.colour, edgecolor="#345"))
        ax.add_patch(patches[-1])
        ax.text(box.x, box.y, box.label, ha="center", va="center", fontsize=8.5)
    bend = 0.5  # how far a loop back bulges, as a share of its length
    above = []  # labels over horizontal arrows, with the height of the boxes' tops beside them
    for a, b, label in arrows:
        start, end = boxes[a], boxes[b]
        back = end.x < start.x and end.y == start.y  # a loop back: below the boxes
        if back:
            p0, p1 = (start.x, start.y - half[1]), (end.x, end.y - half[1])
            style = f"arc3,rad=-{bend}"
        else:
            p0, p1 = _edge(start, end, half), _edge(end, start, half)
            style = "arc3,rad=0.0"
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=14, color="#345",
                                     connectionstyle=style))
        if not label:
            continue
        mx, my = (p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2
        style_kw: dict[str, Any] = {"fontsize": 7.5, "color": "#234", "style": "italic"}
        dx, dy = p1[0] - p0[0], p1[1] - p0[1]
        if back:  # under the lowest point of the arc, which bulges bend/2 of its length below the chord
            depth = bend / 2 * abs(dx)
            ax.text(mx, my - depth - 0.1, label, ha="center", va="top", **style_kw)
        elif dy == 0:
            text = ax.text(mx, my + 0.08, label, ha="center", va="bottom", **style_kw)
            above.append((text, max(start.y, end.y) + half[1]))
        elif abs(dx) >= abs(dy):  # a shallow slope: above the midpoint, on the side the line falls away from
            falling = dx * dy < 0
            ax.text(mx + (0.06 if falling else -0.06), my + 0.06, label, ha="left" if falling else "right",
                    va="bottom", **style_kw)
        else:
            ax.text(mx + 0.08, my, label, ha="left", va="center", **style_kw)
    xs = [b.x for b in boxes.values()]
    ys = [b.y for b in boxes.values()]
    ax.set_xlim(min(xs) - 1.2, max(xs) + 1.2)
    loops = any(boxes[b].x < boxes[a].x and boxes[b].y == boxes[a].y for a, b, _ in arrows)
    ax.set_ylim(min(ys) - (1.5 if loops else 0.7), max(ys) + 0.8)  # room below for a loop's arc and label only
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    # A label wider than the gap between its two boxes would run over their edges: lift it above the boxes.
    fig.canvas.draw()  # fixes the layout and the equal aspect, so that extents are final
    box_extents = [p.get_window_extent() for p in patches]
    for text, top in above:
        if any(text.get_window_extent().overlaps(e) for e in box_extents):
            text.set_y(top + 0.04)
    return fig


def latent_diffusion(shapes: dict[str, str] | None = None) -> Any:
    """Stable Diffusion as blocks: tokenizer → text encoder → (cross-attention) U-Net ⟲ scheduler → VAE decoder.

    ``shapes`` may give the arrows' tensor shapes: keys ``"tokens"``, ``"text"``, ``"latent"``, ``"image"``.
    Introduced in notebook 01_diffusion_basics.
    """
    s = {"tokens": "token ids", "text": "text embeddings", "latent": "latent $x_t$", "image": "image",
         **(shapes or {})}
    boxes = {
        "prompt": Box("prompt", 0, 2, "#f4f4f4"),
        "tokenizer": Box("tokenizer", 2.4, 2),
        "encoder": Box("CLIP text\nencoder", 4.8, 2),
        "noise": Box("noise $x_T$", 0, 0, "#f4f4f4"),
        "unet": Box("U-Net\n(cross-attention\nreads the text)", 4.8, 0, "#fde7c8"),
        "scheduler": Box("scheduler\n(guidance,\nDDIM step)", 7.6, 0, "#fde7c8"),
        "vae": Box("VAE decoder", 10.4, 0),
        "image": Box("picture", 10.4, 2, "#f4f4f4"),
    }
    arrows = [
        ("prompt", "tokenizer", ""),
        ("tokenizer", "encoder", s["tokens"]),
        ("encoder", "unet", s["text"]),
        ("noise", "unet", s["latent"]),
        ("unet", "scheduler", "noise $\\hat\\varepsilon$"),
        ("scheduler", "unet", "$x_{t-1}$: the next step"),
        ("scheduler", "vae", "$x_0$"),
        ("vae", "image", s["image"]),
    ]
    return draw(boxes, arrows, title="Latent diffusion (Stable Diffusion): the U-Net and the scheduler loop "
                "over the steps")


def unclip(shapes: dict[str, str] | None = None) -> Any:
    """unCLIP (DALL-E 2, Karlo) as blocks: text encoder → prior → image embedding → decoder → two upsamplers.

    ``shapes`` may give the arrows' shapes: keys ``"text"``, ``"embedding"``, ``"low"``, ``"image"``.
    Introduced in notebook 03_unclip_image_interpolation.
    """
    s = {"text": "text embedding $z_t$", "embedding": "image embedding $z_i$", "low": "small picture",
         "image": "picture", **(shapes or {})}
    boxes = {
        "caption": Box("caption", 0, 2, "#f4f4f4"),
        "text": Box("CLIP text\nencoder", 2.8, 2),
        "prior": Box("diffusion\nprior", 5.6, 2, "#fde7c8"),
        "picture_in": Box("a picture", 0, 0, "#f4f4f4"),
        "image_enc": Box("CLIP image\nencoder", 2.8, 0),
        "decoder": Box("decoder\n(text_proj: $z_i$ →\ntime + 4 tokens)", 8.6, 1, "#fde7c8"),
        "sr": Box("upsamplers\n(super-res)", 11.4, 1, "#fde7c8"),
        "out": Box("picture", 14.2, 1, "#f4f4f4"),
    }
    arrows = [
        ("caption", "text", ""),
        ("text", "prior", s["text"]),
        ("prior", "decoder", s["embedding"]),
        ("picture_in", "image_enc", ""),
        ("image_enc", "decoder", s["embedding"]),
        ("decoder", "sr", s["low"]),
        ("sr", "out", s["image"]),
    ]
    return draw(boxes, arrows, title="unCLIP: the prior proposes $z_i$ from text, an image's own $z_i$ comes from "
                "CLIP, and the decoder paints $z_i$", size=(14, 4.2))


# One panel of :func:`attention_interpolation`: boxes (label, centre x, centre y, width, height) and horizontal
# arrows (from x, to x, at y, label). The batch's three rows sit at y = 2.4 (A), 1.4 (B) and 0 (the frames) in a
# column from x = -1.2 to 1.2; every arrow is horizontal, so no arrow crosses another and each label sits above
# its own arrow. The last box feeds the frame's attention output (x from 10.3 to 12.1).
_ROWS = {"A": 2.4, "B": 1.4, "F": 0.0}
_MIX_KV = ("mix the keys\nand the values\n$K_{mix} = (1-\\lambda)K_A + \\lambda K_B$\n"
           "$V_{mix} = (1-\\lambda)V_A + \\lambda V_B$", 3.9, 1.9, 2.6, 1.7)
_INTO_MIX = [(1.2, 2.6, _ROWS["A"], "$K_A, V_A$"), (1.2, 2.6, _ROWS["B"], "$K_B, V_B$"),
             (5.2, 6.6, 1.9, "$K_{mix}, V_{mix}$")]
_PANELS: dict[str, tuple[str, list[tuple[str, float, float, float, float]], list[tuple[float, float, float, str]]]] = {
    "inner": (
        "inner (AID): the frame's queries attend to keys and values mixed from A's and B's",
        [_MIX_KV, ("attention\n$\\mathrm{softmax}(Q_\\lambda K_{mix}^{\\top}\\,/\\,\\sqrt{d})\\,V_{mix}$",
                   8.1, 0.95, 3.0, 2.6)],
        _INTO_MIX + [(1.2, 6.6, _ROWS["F"], "$Q_\\lambda$")],
    ),
    "outer": (
        "outer (AID): the frame's queries attend to A's and to B's keys and values separately; the outputs are mixed",
        [("two attentions\n$O_A = \\mathrm{Attn}(Q_\\lambda, K_A, V_A)$\n$O_B = \\mathrm{Attn}(Q_\\lambda, K_B, V_B)$",
          4.2, 1.2, 3.2, 3.1),
         ("mix the outputs\n$(1-\\lambda)\\,O_A + \\lambda\\,O_B$", 8.1, 1.2, 2.6, 1.2)],
        [(1.2, 2.6, y, label) for y, label in ((_ROWS["A"], "$K_A, V_A$"), (_ROWS["B"], "$K_B, V_B$"),
                                               (_ROWS["F"], "$Q_\\lambda$"))] + [(5.8, 6.8, 1.2, "$O_A, O_B$")],
    ),
    "fused": (
        "fused: the frame attends to its own keys and values and to the mixed ones, side by side",
        [_MIX_KV, ("attention to own and mixed\n$\\mathrm{Attn}(Q_\\lambda,\\ [K_\\lambda; K_{mix}],\\ "
                   "[V_\\lambda; V_{mix}])$\n(keys and values concatenated\nalong the sequence)", 8.1, 0.95, 3.0, 2.6)],
        _INTO_MIX + [(1.2, 6.6, _ROWS["F"], "$Q_\\lambda$, own $K_\\lambda, V_\\lambda$")],
    ),
}


def attention_interpolation(modes: Any = ATTENTION_MODES) -> Any:
    """Attention interpolation in one self-attention layer, one panel per mode (``"inner"``, ``"outer"``,
    ``"fused"``, as :class:`helpers.morph.AttentionInterpolation` computes them): the UNet batch holds image A's
    trajectory (row 0, λ = 0), image B's (row 1, λ = 1) and the frames (each at its λ); arrows carry each row's
    queries Q, keys K and values V to where a frame's attention output is made. The endpoint rows themselves
    attend as usual (every mode is plain self-attention at λ = 0 and 1).

    Introduced in notebook 08_morph_your_own_images.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    modes = [modes] if isinstance(modes, str) else list(modes)
    unknown = [m for m in modes if m not in ATTENTION_MODES]
    if not modes or unknown:
        raise ValueError(f"modes must be one or more of {ATTENTION_MODES}, got {unknown or modes!r}")
    fig, axes = plt.subplots(len(modes), 1, figsize=(11, 3.2 * len(modes)), squeeze=False)
    text_kw: dict[str, Any] = {"ha": "center", "va": "center", "fontsize": 8.5}
    label_kw: dict[str, Any] = {"ha": "center", "va": "bottom", "fontsize": 7.5, "color": "#234", "style": "italic"}
    batch = [("row 0: image A\n($\\lambda = 0$)", _ROWS["A"]), ("row 1: image B\n($\\lambda = 1$)", _ROWS["B"]),
             ("rows 2, 3, ...: the frames\n(each at its own $\\lambda$)", _ROWS["F"])]
    for ax, mode in zip(axes[:, 0], modes):
        title, boxes, arrows = _PANELS[mode]
        last = boxes[-1]
        parts = ([(label, 0.0, y, 2.4, 0.7, "#dde8f5") for label, y in batch]
                 + [(*box, "#fde7c8") for box in boxes]
                 + [("the frame's\nattention output", 10.9, last[2], 1.8, 0.8, "#f4f4f4")])
        for label, x, y, w, h, colour in parts:
            ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05", facecolor=colour,
                                        edgecolor="#345"))
            ax.text(x, y, label, **text_kw)
        ax.add_patch(Rectangle((-1.45, -0.6), 2.9, 3.5, fill=False, edgecolor="#789", linestyle="--"))
        ax.text(0.0, 2.95, "one UNet batch", **{**label_kw, "style": "normal"})
        for x0, x1, y, label in arrows + [(last[1] + last[3] / 2, 10.3, last[2], "")]:
            ax.add_patch(FancyArrowPatch((x0 + 0.08, y), (x1 - 0.08, y), arrowstyle="-|>", mutation_scale=14,
                                         color="#345"))
            if label:  # above the arrow; a long arrow's label near its start, clear of the boxes it passes under
                ax.text((x0 + x1) / 2 if x1 - x0 < 3 else x0 + 1.3, y + 0.06, label, **label_kw)
        ax.set_xlim(-1.6, 12.3)
        ax.set_ylim(-0.75, 3.3)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
