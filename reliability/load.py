"""A small open-loop load generator (asyncio + httpx) — wrk is not on every machine.

Requests are started on a fixed schedule (`rate` per second) whatever the server's
latency, up to `concurrency` in flight, so a slow server shows up as latency and errors
rather than as a quietly lower offered load. Every response is kept (status, latency,
model version) so checks can count failures and versions exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx


@dataclasses.dataclass
class Sample:
    """One request: when it started (s since load start), how long, what came back."""

    start: float
    latency: float
    status: int  # 0 = transport error (connection refused/reset, timeout)
    version: str | None = None
    error: str | None = None
    index: int = -1  # the i given to the request maker


@dataclasses.dataclass
class LoadResult:
    """All samples of a load run and what was offered."""

    samples: list[Sample]
    seconds: float
    offered_rate: float
    t0: float = 0.0  # time.perf_counter() at the start; Sample.start is relative to it

    @property
    def failed(self) -> list[Sample]:
        """Requests that did not get a 2xx answer."""
        return [s for s in self.samples if not 200 <= s.status < 300]

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return len(self.samples) / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


KEEPALIVE_EXPIRY_SECONDS = 2.0

RequestFn = Callable[[int], tuple[str, str, Any]]  # i -> (method, path, json body)


async def _run(
    base_url: str,
    headers: dict[str, str],
    make: RequestFn,
    rate: float,
    seconds: float | None,
    stop: threading.Event | None,
    concurrency: int,
    timeout: float,
) -> LoadResult:
    samples: list[Sample] = []
    # The client drops an idle connection well before the server's keep-alive timeout
    # (serve.py: 5 s). With equal timeouts (httpx's default is also 5 s) a request can be
    # written on a socket the server is closing at that instant: a ReadError that says
    # nothing about the server under test.
    limits = httpx.Limits(
        max_connections=concurrency,
        max_keepalive_connections=concurrency,
        keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
    )
    gate = asyncio.Semaphore(concurrency)
    t0 = time.perf_counter()

    async def one(client: httpx.AsyncClient, i: int) -> None:
        method, path, body = make(i)
        start = time.perf_counter()
        try:
            r = await client.request(method, path, json=body)
            version = None
            if r.status_code == 200 and path.startswith("/v1/predict"):
                data = r.json()
                item = data["predictions"][0] if "predictions" in data else data
                version = str(item["model"]["version"])
            latency = time.perf_counter() - start
            samples.append(Sample(start - t0, latency, r.status_code, version, None, i))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            samples.append(
                Sample(start - t0, time.perf_counter() - start, 0, None, repr(exc)[:200], i)
            )
        finally:
            gate.release()

    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=timeout
    ) as client:
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        interval = 1.0 / rate
        while True:
            now = time.perf_counter() - t0
            if seconds is not None and now >= seconds:
                break
            if stop is not None and stop.is_set():
                break
            due = i * interval
            if due > now:
                await asyncio.sleep(due - now)
            await gate.acquire()
            task = asyncio.create_task(one(client, i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    return LoadResult(samples, time.perf_counter() - t0, rate, t0)


def run_load(
    base_url: str,
    headers: dict[str, str],
    make: RequestFn,
    *,
    rate: float,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    concurrency: int = 32,
    timeout: float = 30.0,
) -> LoadResult:
    """Drive `make(i)` requests at `rate`/s until `seconds` pass or `stop` is set."""
    if seconds is None and stop is None:
        raise ValueError("a load run needs seconds or a stop event (bounded by design)")
    return asyncio.run(_run(base_url, headers, make, rate, seconds, stop, concurrency, timeout))


class Background:
    """A load run in a thread: start it, do something to the server, stop, read results."""

    def __init__(self, base_url: str, headers: dict[str, str], make: RequestFn, **kw: Any):
        self.stop_event = threading.Event()
        self.result: LoadResult | None = None
        self.error: BaseException | None = None
        kw.setdefault("seconds", 3600.0)  # a ceiling: the check stops it long before

        def target() -> None:
            try:
                self.result = run_load(base_url, headers, make, stop=self.stop_event, **kw)
            except BaseException as exc:  # reported by stop()
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(120)

    def finish(self) -> LoadResult:
        """Stop the load and return its samples."""
        self.stop_event.set()
        self.thread.join(120)
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def customers() -> list[dict[str, Any]]:
    """Valid records for load (the test factory's customers, as JSON-safe dicts)."""
    from tests.factories import make_customers

    frame = make_customers(200, seed=11).drop(columns=["churn"])
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def predict_requests(records: list[dict[str, Any]]) -> RequestFn:
    """Alternate single predictions (mostly) and small batches over `records`."""

    def make(i: int) -> tuple[str, str, Any]:
        if i % 10 == 9:
            batch = [records[(i + j) % len(records)] for j in range(5)]
            return "POST", "/v1/predict/batch", {"customers": batch}
        return "POST", "/v1/predict", records[i % len(records)]

    return make
