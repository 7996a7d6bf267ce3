"""Interactive explorers: sliders over rendered walks, with a frame cache, an export button and a static fallback.

Introduced in notebook 02_slerp_and_latent_geometry (a slider over the fraction λ) and built into an app in
notebook 06_interactive_explorer. Three explorers:

* :class:`FrameExplorer` — a slider over a few values (a fraction λ, a timestep t, a seed, a guidance scale ...)
  and a function that renders one picture per value;
* :class:`WalkExplorer` — controls (prompts, seeds, frame count ...) that define a whole walk, rendered in one
  batched call, and a λ slider that scrubs through its frames;
* :class:`LiveExplorer` — sliders (λ along a prompt walk, θ around a noise loop ...) whose every move renders the
  frame under them, with no pre-render and no cache: fast enough only with a few-step model, such as the
  teaching flow model through :class:`FlowFrameRenderer` (5 steps with guidance: about 40-50 ms a frame at
  batch 1 on one CPU thread, measured on a 2-core AMD EPYC VM, against about 260 ms for the DDPM teaching
  model's 20 steps). A drag faster than the renders drops the positions it passed over: only the latest one is
  rendered.

The first two cache what they render, so moving a slider back and forth is instant after the first visit
(``cache`` counts renders and hits). All three have an export button (GIF or MP4 through :mod:`helpers.media`)
and a static fallback: :meth:`contact_sheet` is shown under the widget as a plain PNG, so the notebook still
teaches where widgets do not render (GitHub, nbviewer, exported HTML). Everything works headless: set
``slider.value`` from code and the displayed frame follows (for :class:`LiveExplorer` after
:meth:`LiveExplorer.wait`).
"""

from __future__ import annotations

import io
import math
import statistics
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from helpers.checks import check_int, check_real

DISPLAY_WIDTH = 256
#: Smallest tile side in the static contact sheet (tiny 32x32 frames are scaled up to stay readable).
SHEET_TILE = 96
#: How the static contact sheets spell the course's Greek symbols (Pillow's default font has none).
GREEK_NAMES = {"λ": "lambda", "θ": "theta"}


KeyT = TypeVar("KeyT", bound=Hashable)


class FrameCache(Generic[KeyT]):
    """Memoise ``render(key)``: each key is rendered once, then served from memory.

    ``renders`` counts calls of ``render``, ``hits`` answers served from the cache. Introduced in notebook
    06_interactive_explorer.
    """

    def __init__(self, render: Callable[[KeyT], Any]) -> None:
        if not callable(render):
            raise TypeError(f"render must be callable, got {type(render).__name__}")
        self._render = render
        self._store: dict[KeyT, Any] = {}
        self.renders = 0
        self.hits = 0

    def get(self, key: KeyT) -> Any:
        try:
            value = self._store[key]
        except KeyError:
            value = self._render(key)
            self._store[key] = value
            self.renders += 1
        else:
            self.hits += 1
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._store

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()


def _png_bytes(image: Any, width: int) -> bytes:
    """One frame as PNG bytes, scaled up by a whole factor (crisp pixels) towards ``width``."""
    from PIL import Image

    from helpers.media import to_pil

    im = to_pil(image).convert("RGB")
    factor = max(1, width // im.width)
    if factor > 1:
        im = im.resize((im.width * factor, im.height * factor), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or any(c in name for c in '/\\:*?"<>|'):
        raise ValueError(f"name must be a plain file name without a folder or suffix, e.g. 'walk'; got {name!r}")
    return name


class _Explorer:
    """Shared parts: the picture, the status line, the export controls and the static fallback."""

    widget: Any  # the whole widget (an ipywidgets box), built by each subclass

    def __init__(self, *, name: str, out_dir: str | Path, fps: float, display_width: int) -> None:
        import ipywidgets as w

        from helpers.media import check_fps

        self.name = _check_name(name)
        self.out_dir = Path(out_dir)
        self.fps = check_fps(fps)
        self.display_width = check_int("display_width", display_width, low=1, high=4096, hint="pixels")
        self.image = w.Image(format="png", layout=w.Layout(width=f"{self.display_width}px"))
        self.status = w.HTML(value="")
        self.export_format = w.Dropdown(options=["gif", "mp4"], value="gif", description="format",
                                        layout=w.Layout(width="160px"))
        self.export_button = w.Button(description="Export", icon="download", tooltip="write the walk to a file")
        self.export_button.on_click(lambda _button: self._export_clicked())
        self.last_export: Path | None = None

    # -- to be provided by subclasses
    def frames(self) -> list[Any]:
        raise NotImplementedError

    def labels(self) -> list[str]:
        raise NotImplementedError

    def current_frame(self) -> Any:
        raise NotImplementedError

    # -- shared behaviour
    def _show(self, frame: Any, note: str) -> None:
        self.image.value = _png_bytes(frame, self.display_width)
        self.status.value = note

    def export(self, fmt: str = "gif", *, path: str | Path | None = None) -> Path:
        """Write every frame of the current walk as a GIF or an MP4 (``out_dir/<name>.<fmt>``); return the path."""
        from helpers import media

        if fmt not in ("gif", "mp4"):
            raise ValueError(f"fmt must be 'gif' or 'mp4', got {fmt!r}")
        target = Path(path) if path is not None else self.out_dir / f"{self.name}.{fmt}"
        writer = media.export_gif if fmt == "gif" else media.export_mp4
        self.last_export = writer(self.frames(), target, fps=self.fps)
        return self.last_export

    def _export_clicked(self) -> None:
        try:
            path = self.export(self.export_format.value)
        except Exception as err:  # shown in the widget: a button callback must not die silently
            self.status.value = f"<span style='color:#b00'>export failed: {type(err).__name__}: {err}</span>"
        else:
            self.status.value = f"saved <code>{path}</code>"

    def contact_sheet(self, cols: int | None = None) -> Any:
        """All frames of the current walk as one labelled PIL image (the static fallback)."""
        from helpers.media import image_grid, to_pil

        frames = self.frames()
        side = min(to_pil(frames[0]).size)
        return image_grid(frames, cols, labels=self.labels(), scale=max(1, math.ceil(SHEET_TILE / side)))

    def display(self, *, fallback: bool = True) -> None:
        """Show the widget and, below it, the static contact sheet (a plain PNG that renders everywhere)."""
        from IPython.display import Markdown, display

        display(self.widget)
        if fallback:
            display(Markdown("*Static view of the same frames (what GitHub and nbviewer show instead of the "
                             "sliders):*"))
            display(self.contact_sheet())

    def _ipython_display_(self) -> None:
        self.display()


class FrameExplorer(_Explorer):
    """A slider over ``values`` and the picture ``render(value)``, each value rendered once and cached.

    ``render`` returns one frame (PIL image, array or tensor; see :mod:`helpers.media`). ``labels`` name the
    values on the slider (default: the values, rounded). Set ``slider.value`` to an index to move it from
    code. Introduced in notebook 02_slerp_and_latent_geometry.
    """

    def __init__(
        self,
        render: Callable[[Any], Any],
        values: Sequence[Any],
        *,
        description: str = "t",
        labels: Sequence[str] | None = None,
        start: int = 0,
        name: str = "explorer",
        out_dir: str | Path = "outputs",
        fps: float = 8,
        display_width: int = DISPLAY_WIDTH,
    ) -> None:
        import ipywidgets as w

        super().__init__(name=name, out_dir=out_dir, fps=fps, display_width=display_width)
        self.values = list(values)
        if not self.values:
            raise ValueError("values is empty: give at least one value to explore")
        if labels is None:
            labels = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in self.values]
        if len(labels) != len(self.values):
            raise ValueError(f"got {len(labels)} labels for {len(self.values)} values")
        self._labels = [str(s) for s in labels]
        start = check_int("start", start, low=0, high=len(self.values) - 1, hint="an index into values")
        self.cache: FrameCache[int] = FrameCache(lambda i: render(self.values[i]))
        self.slider = w.SelectionSlider(
            options=list(zip(self._labels, range(len(self.values)))), value=start, description=description,
            continuous_update=True, layout=w.Layout(width=f"{max(self.display_width, 320)}px"),
        )
        self.slider.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([self.slider, self.image, w.HBox([self.export_format, self.export_button]), self.status])
        self.update()

    @property
    def index(self) -> int:
        return int(self.slider.value)

    def current_frame(self) -> Any:
        return self.cache.get(self.index)

    def update(self) -> None:
        """Show the frame of the slider's current value (rendering it only on its first visit)."""
        cached = self.index in self.cache
        frame = self.current_frame()
        self._show(frame, f"{self.slider.description} = {self._labels[self.index]}"
                          f"{' (cached)' if cached else ''}")

    def frames(self) -> list[Any]:
        """Every value's frame, in order (renders the ones not visited yet)."""
        return [self.cache.get(i) for i in range(len(self.values))]

    def labels(self) -> list[str]:
        description = self.slider.description  # Pillow's default font has no Greek: spell λ and θ out
        name = GREEK_NAMES.get(description, description if description.isascii() else "value")
        return [f"{name}={s}" for s in self._labels]


def _frozen(value: Any) -> Hashable:
    """A hashable stand-in for a control value, equal exactly when the values are: lists, tuples, dicts and sets
    by their items (a TagsInput's list, a Dropdown's dict), hashable values by type and value, anything else
    by identity (the :class:`_Setting` holding it keeps it alive, so an identity is never reused)."""
    if isinstance(value, (list, tuple)):
        return type(value).__name__, tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return "dict", frozenset((_frozen(k), _frozen(v)) for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return "set", frozenset(_frozen(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return "object", id(value)
    return type(value).__name__, value


class _Setting:
    """One walk setting as a cache key: the control values (passed to ``render_walk`` as they are) and the frame
    count, hashed and compared through :func:`_frozen`, so list- or dict-valued controls work."""

    def __init__(self, values: dict[str, Any], num_frames: int) -> None:
        self.values = values
        self.num_frames = num_frames
        self._id = (_frozen(values), num_frames)

    def __hash__(self) -> int:
        return hash(self._id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Setting) and self._id == other._id


class WalkExplorer(_Explorer):
    """Controls that define a walk, a frame-count slider and a λ slider that scrubs through the rendered walk.

    ``render_walk(num_frames=N, **values)`` returns the N frames of the walk for the current control values
    (``controls`` maps keyword names to ipywidgets, e.g. ``{"prompt_a": Text(...), "seed": IntText(...)}``).
    A walk is rendered once per distinct setting (one batched call, with its own progress bar) and cached:
    scrubbing λ (the slider ``frac``), or coming back to an earlier setting, renders nothing. λ runs over
    [0, 1]: 0 is the first frame, 1 the last. Introduced in notebook 06_interactive_explorer.
    """

    def __init__(
        self,
        render_walk: Callable[..., Sequence[Any]],
        controls: Mapping[str, Any] | None = None,
        *,
        num_frames: int = 8,
        max_frames: int = 32,
        name: str = "walk",
        out_dir: str | Path = "outputs",
        fps: float = 8,
        display_width: int = DISPLAY_WIDTH,
    ) -> None:
        import ipywidgets as w

        super().__init__(name=name, out_dir=out_dir, fps=fps, display_width=display_width)
        max_frames = check_int("max_frames", max_frames, low=2)
        num_frames = check_int("num_frames", num_frames, low=2, high=max_frames, hint=f"max_frames is {max_frames}")
        self.controls = dict(controls or {})
        for key, control in self.controls.items():
            if not hasattr(control, "observe") or not hasattr(control, "value"):
                raise TypeError(f"control {key!r} must be an ipywidgets widget with a value, got {type(control).__name__}")
        self._render_walk = render_walk
        self.cache: FrameCache[_Setting] = FrameCache(self._render_key)
        self.num_frames = w.IntSlider(value=num_frames, min=2, max=max_frames, description="frames",
                                      continuous_update=False)
        self.frac = w.FloatSlider(value=0.0, min=0.0, max=1.0, step=1 / (num_frames - 1), description="λ",
                                  continuous_update=True, readout_format=".2f",
                                  layout=w.Layout(width=f"{max(self.display_width, 320)}px"))
        for control in (*self.controls.values(), self.num_frames):
            control.observe(lambda _change: self.update(), names="value")
        self.num_frames.observe(lambda change: setattr(self.frac, "step", 1 / (change["new"] - 1)), names="value")
        self.frac.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([
            *self.controls.values(), self.num_frames, self.frac, self.image,
            w.HBox([self.export_format, self.export_button]), self.status,
        ])
        self.update()

    def _render_key(self, key: _Setting) -> list[Any]:
        from helpers.media import to_pil_list

        frames = to_pil_list(self._render_walk(num_frames=key.num_frames, **key.values))
        if len(frames) != key.num_frames:
            raise ValueError(f"render_walk returned {len(frames)} frames for num_frames={key.num_frames}")
        return frames

    def settings(self) -> dict[str, Any]:
        """The current control values (what ``render_walk`` receives, besides ``num_frames``)."""
        return {key: control.value for key, control in self.controls.items()}

    def _key(self) -> _Setting:
        return _Setting(self.settings(), int(self.num_frames.value))

    @property
    def index(self) -> int:
        """The frame λ points at: ``round(λ · (N − 1))``."""
        n = int(self.num_frames.value)
        return min(n - 1, max(0, round(float(self.frac.value) * (n - 1))))

    def frames(self) -> list[Any]:
        """The current walk's frames (rendered on first use, then cached)."""
        return self.cache.get(self._key())

    def current_frame(self) -> Any:
        return self.frames()[self.index]

    def update(self) -> None:
        """Show the frame λ points at, rendering the walk only if this setting was never rendered."""
        cached = self._key() in self.cache
        try:
            frame = self.current_frame()
        except Exception as err:  # e.g. an empty prompt: say so in the widget, keep the last picture
            self.status.value = f"<span style='color:#b00'>{type(err).__name__}: {err}</span>"
            return
        n = int(self.num_frames.value)
        self._show(frame, f"frame {self.index + 1} of {n} (λ = {self.frac.value:.2f})"
                          f"{' · cached' if cached else ' · rendered'} · {self.cache.renders} walk(s) rendered")

    def labels(self) -> list[str]:
        n = int(self.num_frames.value)
        return [f"lambda={i / (n - 1):.2f}" for i in range(n)]  # λ, spelt out for Pillow's font


class LiveExplorer(_Explorer):
    """Sliders whose every move renders the frame under them: no pre-render, no cache.

    ``render(**values)`` returns one frame for the sliders' current values (``sliders`` maps keyword names to
    ipywidgets sliders, e.g. ``{"frac": FloatSlider(description="λ"), "angle": FloatSlider(description="θ")}``).
    A slider move is a *request*; one render runs at a time (in a worker thread with ``background=True``, so the
    kernel keeps reading the slider while it renders) and always takes the latest request: the positions a fast
    drag passes over while a frame renders are dropped, not queued (``dropped`` counts them; ``requests ==
    renders + dropped`` once idle). The status line shows the time per frame (render and PNG), ``timings`` keeps
    every one in ms. :meth:`wait` blocks until the latest request is shown (use it after setting a slider from
    code). ``render`` is never called from two threads at once. The static fallback and the export sweep the
    slider ``sweep`` (default: the first) over ``num_frames`` values from its ``min`` to its ``max``, the other
    sliders where they stand.

    Live rendering pays off with a few-step model: :class:`FlowFrameRenderer` renders a prompt walk and a noise
    loop of an SD 3-class flow model (the teaching flow model: 5 steps). For the DDPM-style models, render whole
    walks once and scrub them with :class:`WalkExplorer`. Introduced in notebook 06_interactive_explorer.
    """

    def __init__(
        self,
        render: Callable[..., Any],
        sliders: Mapping[str, Any],
        *,
        sweep: str | None = None,
        num_frames: int = 6,
        background: bool = True,
        name: str = "live",
        out_dir: str | Path = "outputs",
        fps: float = 8,
        display_width: int = DISPLAY_WIDTH,
    ) -> None:
        import ipywidgets as w

        super().__init__(name=name, out_dir=out_dir, fps=fps, display_width=display_width)
        if not callable(render):
            raise TypeError(f"render must be callable, got {type(render).__name__}")
        self.sliders = dict(sliders)
        if not self.sliders:
            raise ValueError("sliders is empty: give at least one slider, e.g. {'frac': FloatSlider(...)}")
        for key, slider in self.sliders.items():
            if not all(hasattr(slider, attr) for attr in ("observe", "value", "min", "max")):
                raise TypeError(f"slider {key!r} must be an ipywidgets slider (value, min, max), "
                                f"got {type(slider).__name__}")
        self.sweep = next(iter(self.sliders)) if sweep is None else sweep
        if self.sweep not in self.sliders:
            raise ValueError(f"sweep must name one of the sliders {list(self.sliders)}, got {self.sweep!r}")
        self.num_frames = check_int("num_frames", num_frames, low=2, high=256, hint="frames of the static view")
        self.background = bool(background)
        self._render = render
        self._lock = threading.Lock()  # guards the request state below
        self._render_lock = threading.Lock()  # one render at a time, whichever thread asks
        self._idle = threading.Event()
        self._idle.set()
        self._pending: dict[str, Any] | None = None
        self._busy = False
        self._frame: Any = None
        self.requests = 0
        self.renders = 0
        self.dropped = 0
        self.timings: list[float] = []
        self.last_error: Exception | None = None
        for slider in self.sliders.values():
            slider.observe(lambda _change: self.request(), names="value")
        self.widget = w.VBox([*self.sliders.values(), self.image,
                              w.HBox([self.export_format, self.export_button]), self.status])
        self.request(background=False)  # the first frame, before the widget is shown
        if self.last_error is not None:
            raise self.last_error

    def values(self) -> dict[str, Any]:
        """The sliders' current values (what ``render`` receives)."""
        return {key: slider.value for key, slider in self.sliders.items()}

    def request(self, *, background: bool | None = None) -> None:
        """Ask for the frame of the sliders' current values (every slider move calls this)."""
        values = self.values()
        with self._lock:
            self.requests += 1
            if self._pending is not None:
                self.dropped += 1  # superseded before its render began
            self._pending = values
            if self._busy:
                return  # the running worker takes the latest request when its frame is done
            self._busy = True
            self._idle.clear()
        if self.background if background is None else background:
            threading.Thread(target=self._drain, name=f"live-{self.name}", daemon=True).start()
        else:
            self._drain()

    def _drain(self) -> None:
        """Render the latest request until none is left."""
        try:
            while True:
                with self._lock:
                    values, self._pending = self._pending, None
                    if values is None:
                        return
                self._render_and_show(values)
        finally:
            with self._lock:
                self._busy = False
                self._idle.set()

    def _render_and_show(self, values: dict[str, Any]) -> None:
        start = time.perf_counter()
        try:
            with self._render_lock:
                self.renders += 1
                frame = self._render(**values)
            png = _png_bytes(frame, self.display_width)
        except Exception as err:  # e.g. a bad slider value: say so in the widget, keep the last picture
            self.last_error = err
            self.status.value = f"<span style='color:#b00'>{type(err).__name__}: {err}</span>"
            return
        ms = 1000 * (time.perf_counter() - start)
        self.timings.append(ms)
        self._frame, self.last_error = frame, None
        self.image.value = png
        self.status.value = (f"{self._readout(values)} · {ms:.0f} ms/frame (median {self.ms_per_frame:.0f} ms over "
                             f"{len(self.timings)}) · {self.dropped} stale position(s) dropped")

    def _format(self, key: str, value: Any) -> str:
        """``value`` as slider ``key`` reads it out (its ``readout_format``)."""
        fmt = getattr(self.sliders[key], "readout_format", "")
        try:
            return format(value, fmt) if fmt else str(value)
        except (TypeError, ValueError):
            return str(value)

    def _readout(self, values: Mapping[str, Any]) -> str:
        return ", ".join(f"{self.sliders[key].description or key} = {self._format(key, value)}"
                         for key, value in values.items())

    @property
    def ms_per_frame(self) -> float:
        """The median time per rendered frame in ms (render and PNG), NaN before the first frame."""
        return statistics.median(self.timings) if self.timings else math.nan

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the latest request is rendered and shown (or ``timeout`` seconds pass); True when idle."""
        return self._idle.wait(timeout)

    def current_frame(self) -> Any:
        """The frame shown for the latest request (after waiting for it)."""
        self.wait()
        return self._frame

    def _sweep_values(self) -> list[Any]:
        slider = self.sliders[self.sweep]
        low, high = slider.min, slider.max
        return [low + (high - low) * i / (self.num_frames - 1) for i in range(self.num_frames)]

    def frames(self) -> list[Any]:
        """The static view and the export: ``num_frames`` frames along the ``sweep`` slider, rendered now."""
        self.wait()
        values = self.values()
        frames = []
        for value in self._sweep_values():
            with self._render_lock:
                frames.append(self._render(**{**values, self.sweep: value}))
        return frames

    def labels(self) -> list[str]:
        description = self.sliders[self.sweep].description or self.sweep
        name = GREEK_NAMES.get(description, description if description.isascii() else "value")
        return [f"{name}={self._format(self.sweep, v)}" for v in self._sweep_values()]


class FlowFrameRenderer:
    """One frame of a prompt walk and a noise loop of a flow model (SD 3, FLUX), rendered on demand.

    ``renderer(frac, angle)`` → one PIL frame: the prompt embeddings slerped at λ = ``frac`` between the two rows
    of ``prompt_embeds`` (from :func:`helpers.encode_prompts`; one row: a fixed prompt), the noise
    ``cos θ · latents[0] + sin θ · latents[1]`` at θ = ``angle`` degrees (notebook 05's noise loop; one row: fixed
    noise, θ must stay 0), sampled in ``num_inference_steps`` Euler steps of :mod:`helpers.flow` (the scheduler's
    σ grid, classifier-free guidance as one batched call per step against the first row of
    ``negative_prompt_embeds``, default the empty prompt's; on FLUX ``guidance_scale`` is its distilled guidance,
    one row per step) and decoded. The same picture as :func:`helpers.render_frames` with those embeddings
    and that noise, without the pipeline call around it. ``evaluations`` counts the transformer rows a frame
    costs. Anything but an SD 3- or FLUX-class pipeline gets one ``TypeError``. Introduced in notebook
    06_interactive_explorer, for :class:`LiveExplorer`.
    """

    def __init__(
        self,
        pipe: Any,
        prompt_embeds: Any,
        negative_prompt_embeds: Any = None,
        latents: Any = None,
        *,
        num_inference_steps: int,
        guidance_scale: float = 1.0,
        height: int | None = None,
        width: int | None = None,
    ) -> None:
        import torch

        from helpers import flow
        from helpers.checks import check_guidance, check_steps
        from helpers.pipeline_info import latent_shape
        from helpers.render import check_inputs

        fam = flow.check_flow_pipeline(pipe, "the live mode", "its sampler needs many steps a frame: render whole "
                                       "walks once and scrub them with WalkExplorer")
        if latents is None:
            raise ValueError("latents is missing: give one or two rows of noise, e.g. "
                             "helpers.make_latents(pipe, [seed_a, seed_b], height=..., width=...)")
        cond = check_inputs(pipe, "text2img", prompt_embeds=prompt_embeds,
                            negative_prompt_embeds=negative_prompt_embeds, image_embeddings=None,
                            super_res_latents=None, batch_size=None, pipe_kwargs={})
        if len(cond) > 2:
            raise ValueError(f"prompt_embeds must hold 1 or 2 rows (the walk's two ends), got {len(cond)}")
        if not isinstance(latents, torch.Tensor) or latents.ndim != 4 or len(latents) > 2:
            raise ValueError("latents must be a tensor of 1 or 2 rows of noise (N, C, h, w), got "
                             f"{tuple(getattr(latents, 'shape', ()))}")
        shape = latent_shape(pipe, height=height, width=width)
        if tuple(latents.shape[1:]) != shape:
            raise ValueError(f"latents rows must be {shape} for this pipeline at this size, got "
                             f"{tuple(latents.shape[1:])}")
        self.pipe = pipe
        self.steps = check_steps("num_inference_steps", num_inference_steps)
        self.guidance_scale = check_guidance("guidance_scale", guidance_scale)
        classifier_free = self.guidance_scale > 1 and fam == "sd3"  # FLUX.1 takes its guidance as an input
        if negative_prompt_embeds is None and classifier_free:
            from helpers.embeddings import encode_prompts

            negative_prompt_embeds = encode_prompts(pipe, [""])[1]  # what render_frames uses by default
        self.prompt_embeds = cond.float()
        self.negative_prompt_embeds = None if negative_prompt_embeds is None else negative_prompt_embeds[:1].float()
        self.latents = latents.float()
        self.grid = flow.sigmas(pipe, self.steps, height=height, width=width)
        self.evaluations = self.steps * (2 if classifier_free else 1)

    def conditioning(self, frac: float) -> Any:
        """The prompt embeddings at λ = ``frac`` (one row)."""
        from helpers.interpolation import slerp

        frac = check_real("frac", frac, low=0.0, high=1.0, hint="λ runs from 0 (prompt A) to 1 (prompt B)")
        if len(self.prompt_embeds) == 1:
            return self.prompt_embeds
        return slerp(self.prompt_embeds[0], self.prompt_embeds[1], frac)[None]

    def noise(self, angle: float) -> Any:
        """The initial noise at θ = ``angle`` degrees on the loop through both rows of ``latents`` (one row)."""
        angle = check_real("angle", angle, hint="θ in degrees, e.g. 0 to 360")
        if len(self.latents) == 1:
            if angle != 0:
                raise ValueError("angle moves around a noise loop, which needs two rows of latents; got one")
            return self.latents
        theta = math.radians(angle)
        return math.cos(theta) * self.latents[:1] + math.sin(theta) * self.latents[1:]

    def __call__(self, frac: float = 0.0, angle: float = 0.0) -> Any:
        import torch
        from diffusers.utils import numpy_to_pil

        from helpers import flow
        from helpers.render import check_finite_frames

        velocity = flow.velocity_fn(self.pipe, self.conditioning(frac), self.negative_prompt_embeds,
                                    guidance_scale=self.guidance_scale)
        x = flow.integrate(velocity, self.noise(angle), self.grid)
        assert isinstance(x, torch.Tensor)  # no trajectory asked for
        images = flow.decode_latents(self.pipe, x).permute(0, 2, 3, 1).numpy()
        check_finite_frames(images)
        return numpy_to_pil(images)[0]


__all__ = ["FlowFrameRenderer", "FrameCache", "FrameExplorer", "LiveExplorer", "WalkExplorer"]
