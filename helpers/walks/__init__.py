"""Whole walks on disk: walk files (YAML), resumable renders into a folder, and the command line.

Introduced in notebook 04_prompt_walks.

* :mod:`helpers.walks.spec` — walk files: parsed and validated up front, then run (:func:`run_walk`);
* :mod:`helpers.walks.folder` — :func:`render_walk`: the frames, the manifest and the commit log of a folder;
* ``python -m helpers.walks WALK.yaml`` — the command line (also under ``accelerate launch``).

:mod:`helpers.render` renders frames in memory and knows nothing of this package.
"""

from __future__ import annotations

from helpers.walks.folder import (
    COMMITS_NAME,
    LARGE_WALK_FRAMES,
    MANIFEST_NAME,
    ForeignFolderError,
    SafetyCheckerError,
    WalkFolderError,
    WalkRender,
    WalkWriteError,
    read_manifest,
    render_walk,
)
from helpers.walks.spec import WalkSpec, check_runtime, load_walk_spec, main, parse_walk_spec, run_walk

__all__ = [
    "COMMITS_NAME", "LARGE_WALK_FRAMES", "MANIFEST_NAME", "ForeignFolderError", "SafetyCheckerError",
    "WalkFolderError", "WalkRender", "WalkSpec", "WalkWriteError", "check_runtime", "load_walk_spec", "main",
    "parse_walk_spec", "read_manifest", "render_walk", "run_walk",
]
