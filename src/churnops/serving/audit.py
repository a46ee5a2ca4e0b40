"""The audit trail and the sampled prediction log, written by a separate writer process.

The request path appends one tuple to a list (no dict, JSON, datetime, lock or syscall).
Every ``HANDOFF_SECONDS`` a task on the event loop marshals everything appended since the
last tick into one frame (a single C call) and writes it, non-blocking, into the stdin pipe
of the writer process (``churnops.store.audit_writer``), which batches the rows into the
store. All the Python work of turning rows into SQL runs in that process, on another core:
the server's GIL is never shared with a writer thread (the previous design's remaining
cost, measured at 50-80 µs of server CPU per audited request).

Each uvicorn worker owns its writer (started and drained by the app's lifespan). Nothing
here can fail or block a request: frames the pipe does not take yet wait in a bounded
buffer; when that is full (writer stuck, store slow), when the writer died with rows in
flight, or when the store stayed unavailable longer than the writer retries
(``retry_seconds``), rows are dropped and counted (``churnops_audit_dropped_total``) and
one error is logged per outage. Rows the store refuses are quarantined by the writer, not
dropped, and counted in :attr:`AuditWriter.quarantined`. A dead writer is restarted (at
most once a second) and gets what was still buffered. Shadow scoring runs
in one background thread of the server (it needs the challenger); its rows take the same
path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from churnops.config import Settings
from churnops.store.audit_writer import AUDIT_FIELDS, PREDICTION_FIELDS, RETRY_SECONDS, frame

log = logging.getLogger("churnops.serving")

HANDOFF_SECONDS = 0.05  # how often the event loop hands buffered rows to the writer
FLUSH_SECONDS = 0.2  # how often the writer process commits
MAX_BUFFERED_BYTES = 32 << 20  # marshalled rows the pipe has not taken yet
PIPE_BYTES = 1 << 20  # asked of the kernel (F_SETPIPE_SZ); the default 64 KiB also works
RESTART_SECONDS = 1.0
STOP_SECONDS = 10.0
_F_SETPIPE_SZ = 1031

__all__ = ["AUDIT_FIELDS", "PREDICTION_FIELDS", "AuditWriter", "now"]


class AuditWriter:
    """Buffer audit and prediction-log rows; hand them to a writer process in batches."""

    def __init__(
        self,
        settings: Settings,
        on_drop: Callable[[int], None] | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        handoff_seconds: float = HANDOFF_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.settings = settings
        self.flush_seconds = flush_seconds
        self.retry_seconds = retry_seconds
        self.handoff_seconds = handoff_seconds
        self._on_drop = on_drop or (lambda n: None)
        self._audits: list[tuple[Any, ...]] = []  # event-loop thread only
        self._predictions: list[tuple[Any, ...]] = []
        self._from_threads: collections.deque[list[tuple[Any, ...]]] = collections.deque()
        self._frames: collections.deque[tuple[bytes, int]] = collections.deque()  # (frame, rows)
        self._offset = 0  # bytes of the first frame already in the pipe
        self._buffered = 0  # bytes in self._frames
        self._proc: subprocess.Popen[bytes] | None = None
        self._sent = 0  # rows fully written to the current process
        self._acked = 0  # rows the current process reported written or dropped
        self._report = bytearray()
        self._open = False
        self._task: asyncio.Task[None] | None = None
        self._jobs: ThreadPoolExecutor | None = None
        self._next_restart = 0.0
        self._outage = False
        self.written = {"audit": 0, "prediction": 0}
        self.dropped = 0
        self.quarantined = 0
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The writer process id (None before start)."""
        return self._proc.pid if self._proc is not None else None

    # -- request path (event-loop thread) -------------------------------------------------

    def audit(self, row: tuple[Any, ...]) -> None:
        """Queue one audit row: a tuple of :data:`AUDIT_FIELDS` values, in that order."""
        if self._open:
            self._audits.append(row)
        else:
            self._drop(1)

    def predictions(self, rows: list[tuple[Any, ...]]) -> None:
        """Queue prediction-log rows: tuples of :data:`PREDICTION_FIELDS` values."""
        if not rows:
            return
        if self._open:
            self._predictions.extend(rows)
        else:
            self._drop(len(rows))

    def job(self, func: Callable[[], list[tuple[Any, ...]]]) -> None:
        """Run ``func`` in a background thread; the prediction-log rows it returns are queued."""
        if not self._open:
            self._drop(1)
            return
        if self._jobs is None:
            self._jobs = ThreadPoolExecutor(1, thread_name_prefix="churnops-shadow")
        self._jobs.submit(self._run_job, func)

    def _run_job(self, func: Callable[[], list[tuple[Any, ...]]]) -> None:
        try:
            rows = func()
        except Exception:
            log.exception("background job failed")
            return
        if rows:
            self._from_threads.append(rows)  # deque.append: thread-safe

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer process and the hand-off task (from the app's lifespan)."""
        if self._task is not None:
            return
        await asyncio.to_thread(self._spawn)
        self._open = True
        self._task = asyncio.create_task(self._pump(), name="churnops-audit-handoff")

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Hand over everything queued, let the writer commit it and exit (or kill it)."""
        if self._task is None:
            return
        self._open = False
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._jobs is not None:
            await asyncio.to_thread(self._jobs.shutdown, wait=True)
            self._jobs = None
        self._pack()
        await asyncio.to_thread(self._close, timeout)

    async def _pump(self) -> None:
        while True:
            await asyncio.sleep(self.handoff_seconds)
            try:
                self._read_reports()
                if not self._alive():
                    self._lost()
                    if time.monotonic() >= self._next_restart:
                        await asyncio.to_thread(self._restart)
                self._pack()
                self._send()
            except Exception:  # the hand-off must keep running whatever happens
                log.exception("audit hand-off failed")

    def _spawn(self) -> None:
        self._next_restart = time.monotonic() + RESTART_SECONDS
        proc = subprocess.Popen(
            [sys.executable, "-m", "churnops.store.audit_writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        with contextlib.suppress(Exception):
            fcntl.fcntl(proc.stdin.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(proc.stdout.fileno(), False)
        header = frame(
            {
                "url": self.settings.resolved_database_url,
                "flush_seconds": self.flush_seconds,
                "busy_seconds": self.settings.sqlite_busy_seconds,
                "retry_seconds": self.retry_seconds,
            }
        )
        os.write(proc.stdin.fileno(), header)  # an empty pipe takes a few hundred bytes
        os.set_blocking(proc.stdin.fileno(), False)
        self._proc, self._sent, self._acked, self._report = proc, 0, 0, bytearray()

    def _restart(self) -> None:
        try:
            self._spawn()
        except OSError as exc:
            log.error("cannot start the audit writer process: %s", exc)
            return
        self.restarts += 1
        log.warning("audit writer process restarted (pid %s)", self.pid)

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _lost(self) -> None:
        """Count the rows a dead writer took but never committed; forget that process."""
        proc = self._proc
        if proc is None:
            return
        self._read_reports()
        lost = self._sent - self._acked
        if self._offset:  # a frame half-written into the dead pipe: the writer never read it
            data, rows = self._frames.popleft()
            self._buffered -= len(data)
            self._offset = 0
            lost += rows
        self._outage_log(f"audit writer process exited (code {proc.returncode})")
        self._drop(lost)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]
        self._proc = None
        self._sent = self._acked = 0

    # -- hand-off (event-loop thread) -----------------------------------------------------

    def _pack(self) -> None:
        """Marshal every queued row into one frame (bounded buffer: drop when full)."""
        audits, predictions = self._audits, self._predictions
        while self._from_threads:
            predictions.extend(self._from_threads.popleft())
        n = len(audits) + len(predictions)
        if not n:
            return
        self._audits, self._predictions = [], []
        data = frame((audits, predictions))
        if self._buffered + len(data) > MAX_BUFFERED_BYTES:
            self._outage_log("audit buffer full (writer process slow or stuck)")
            self._drop(n)
            return
        self._frames.append((data, n))
        self._buffered += len(data)

    def _send(self) -> None:
        """Write buffered frames into the pipe until it is full (never blocks)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        fd = proc.stdin.fileno()
        frames = self._frames
        while frames:
            data, rows = frames[0]
            try:
                written = os.write(fd, memoryview(data)[self._offset :])
            except BlockingIOError:
                return
            except OSError:  # EPIPE: the writer died; _pump notices and restarts it
                return
            self._offset += written
            if self._offset < len(data):
                return
            frames.popleft()
            self._buffered -= len(data)
            self._offset = 0
            self._sent += rows

    def _read_reports(self) -> None:
        """Take the writer's ``W``/``Q``/``D`` report lines (non-blocking)."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        try:
            chunk = os.read(proc.stdout.fileno(), 65536)
        except (BlockingIOError, OSError, ValueError):
            return
        self._parse_reports(chunk)

    def _parse_reports(self, chunk: bytes) -> None:
        *lines, rest = (self._report + chunk).split(b"\n")
        self._report = bytearray(rest)
        for line in lines:
            kind, *counts = line.split() or [b""]
            numbers = [int(c) for c in counts]
            self._acked += sum(numbers)
            if kind == b"W":
                self.written["audit"] += numbers[0]
                self.written["prediction"] += numbers[1]
                self._outage = False
            elif kind == b"Q":  # stored in audit_quarantine (the writer logs why)
                self.quarantined += numbers[0]
            elif kind == b"D":
                self._outage_log("the audit writer cannot write to the store")
                self._drop(numbers[0])

    def _drop(self, n: int) -> None:
        if n > 0:
            self.dropped += n
            self._on_drop(n)

    def _outage_log(self, reason: str) -> None:
        if not self._outage:
            log.error("%s: audit/prediction-log rows are being dropped (counted)", reason)
            self._outage = True

    # -- shutdown (a worker thread, after the loop stopped queueing) ----------------------

    def _close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self._alive():
            self._lost()
            if self._frames:
                self._restart()  # one more try, so a crash just before shutdown loses less
        proc = self._proc
        if proc is None or proc.stdin is None:
            self._drop(sum(rows for _, rows in self._frames))
            self._frames.clear()
            return
        fd = proc.stdin.fileno()
        while self._frames and time.monotonic() < deadline and proc.poll() is None:
            self._send()
            if self._frames:
                with contextlib.suppress(Exception):
                    select.select([], [fd], [], min(0.1, max(0.0, deadline - time.monotonic())))
            self._read_reports()
        with contextlib.suppress(Exception):
            proc.stdin.close()  # end of input: the writer commits the rest and exits
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("audit writer process did not finish in %.0fs; killed", timeout)
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            os.set_blocking(proc.stdout.fileno(), True)
            self._parse_reports(proc.stdout.read() + b"\n")
            proc.stdout.close()
        self._drop(self._sent - self._acked + sum(rows for _, rows in self._frames))
        self._frames.clear()
        self._proc = None


def now() -> datetime:
    """Return the current UTC time (one place, so rows agree on the clock)."""
    return datetime.now(UTC)
