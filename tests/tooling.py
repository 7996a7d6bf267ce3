"""Import the project's scripts in tools/ (not part of the installed package) from the tests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from toolbox import load_tool  # noqa: E402  (tools/ is not a package)

__all__ = ["ROOT", "ended_by", "interruptible", "load_tool"]


def ended_by(returncode: int, output: str, sig: int) -> bool:
    """Whether a child Python process ended because of the signal ``sig``.

    For SIGINT, Python normally ends an uncaught ``KeyboardInterrupt`` by SIGINT itself (return code -2). When
    torch's compiler stack is loaded (diffusers loads it), its exit hook ``torch._dynamo.utils.dump_compile_times``
    imports ``tabulate`` for the first time while Python exits, and CPython then exits with status 1 instead
    (measured 2026-12-07 with torch 2.13.0; tabulate comes with the course site's packages). Both mean the
    process was interrupted by the Ctrl-C: status 1 counts only with ``KeyboardInterrupt`` as its last word.
    """
    import signal

    if returncode == -sig:
        return True
    return sig == signal.SIGINT and returncode == 1 and output.rstrip().endswith("KeyboardInterrupt")


def interruptible() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: Ctrl-C as a terminal delivers it. A test
    runner started in the background by a non-interactive shell (``make test &``) ignores SIGINT, children
    inherit that, and Python then never installs its KeyboardInterrupt handler: the child would shrug the
    signal off."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)

