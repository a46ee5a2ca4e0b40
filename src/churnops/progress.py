"""Progress reporting for long stages: ``progress(task, done, total)``, nothing else.

Training, monitoring, the pipeline and the CLI's own steps all report through it.

Stages call the callback and never draw anything; the CLI draws one rich bar per task.
This module imports nothing heavy, so a caller can show a step before the heavy imports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressFn = Callable[[str, int, int], None]


@contextmanager
def step(progress: ProgressFn | None, name: str) -> Iterator[None]:
    """Show ``name`` as a one-part task while the block runs (a status line with a clock)."""
    if progress is not None:
        progress(name, 0, 1)
    yield
    if progress is not None:
        progress(name, 1, 1)
