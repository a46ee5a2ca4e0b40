"""Produce an iterator's items in a thread, ahead of the consumer (a bounded prefetch)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def ahead(results: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Produce ``results`` in a thread, up to ``depth`` items ahead of the consumer.

    Scoring the next chunk then overlaps with spilling the current one, and sorting the
    next ranked partition with writing the current one: LightGBM, numba, pyarrow and
    sqlite3 release the GIL for their heavy parts, so on two cores neither side waits.
    Order is kept; an error in the producer is raised here, in the consumer; when the
    consumer stops early (an error, too many rejections) the producer is told to stop.
    """
    done = object()
    out: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for result in results:
                if not offer(result):
                    break
            else:
                offer(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="churnops-score-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
