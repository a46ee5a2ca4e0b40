"""A small typed client for the churnops REST API (``churnops serve``).

For services and scripts that score customers over HTTP instead of loading the model::

    from churnops.client import Client

    with Client("http://127.0.0.1:8000", key) as client:
        prediction = client.predict({"customer_id": "C1", "tenure": 3, ...})

It retries what a retry can fix — connection errors and timeouts, ``429`` (waiting as
long as ``Retry-After`` says) and ``502``/``503``/``504`` — with exponential backoff, and
turns every other error answer into a :class:`RequestRejectedError` carrying the status
and the API's error body (which field, what was sent, what is allowed). Bodies are encoded
with orjson, so records taken from a DataFrame (numpy numbers, NaN for missing) are sent
as JSON numbers and ``null``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import httpx
import orjson

from churnops.errors import ChurnopsError

DEFAULT_BATCH_LIMIT = 1000  # the server's serve_batch_limit default
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_WAIT_SECONDS = 60.0  # longest single wait, whatever Retry-After asks

T = TypeVar("T")


class ClientError(ChurnopsError):
    """The API did not score the request; base of the client's errors.

    Attributes:
        status: the HTTP status of the last answer (None: no answer at all).
        body: the API's error body (``error``, ``message``, and details such as
            ``errors`` for a 422), or empty when there was no JSON answer.
        request_id: the server's id of the request, to find it in the server's logs.
    """

    def __init__(
        self, message: str, status: int | None = None, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, {"status": status, "body": body or {}})
        self.status = status
        self.body: dict[str, Any] = self.details["body"]
        self.request_id: str | None = self.body.get("request_id")


class RequestRejectedError(ClientError):
    """The API refused the request (4xx): retrying the same request will not help.

    A 422 names each problem in ``body["errors"]`` (``field``, ``message``, ``sent``,
    ``allowed`` and, in a batch, ``index``: the record's position in the list passed to
    :meth:`Client.predict_batch`); 401/403 mean a missing, revoked or under-privileged key.
    """


class ServerError(ClientError):
    """The server gave no usable answer: try again later.

    Unreachable or timing out, busy (502/503/504) or still rate-limiting (429) after every
    retry, or failing (500: the server's log has the details under :attr:`request_id`).
    """


@dataclass(frozen=True)
class ModelRef:
    """Which model answered.

    Attributes:
        name: the registered model's name.
        version: the version that scored the customer.
        variant: ``champion``, or ``challenger`` for a customer in the canary share.
    """

    name: str
    version: str
    variant: str


@dataclass(frozen=True)
class Reason:
    """One reason for a score: a feature, the customer's value, its log-odds push.

    Attributes:
        feature: the contract column.
        contribution: signed log-odds contribution (positive: towards churn).
        value: the customer's value as scored (None: missing or an ignored category).
        text: the reason as people read it, e.g. ``contract = Month-to-month (+0.96
            log-odds)`` (None from servers that do not send it).
    """

    feature: str
    contribution: float
    value: str | int | float | bool | None
    text: str | None = None


@dataclass(frozen=True)
class Prediction:
    """The API's answer for one customer (``PredictionOut``).

    Attributes:
        customer_id: the customer's id as text (None when the model has no id column).
        probability: the calibrated churn probability.
        churn: whether the probability is at or above the model's threshold.
        model: which model version answered.
        reasons: the top reasons when asked with ``explain=True``, else None.
    """

    customer_id: str | None
    probability: float
    churn: bool
    model: ModelRef
    reasons: tuple[Reason, ...] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Prediction:
        """Build a prediction from one item of the API's JSON answer."""
        reasons = data.get("reasons")
        return cls(
            customer_id=data["customer_id"],
            probability=float(data["probability"]),
            churn=bool(data["churn"]),
            model=_known(ModelRef, data["model"]),
            reasons=None if reasons is None else tuple(_known(Reason, r) for r in reasons),
        )


class Client:
    """A synchronous client of one churnops API server.

    Use it as a context manager (or call :meth:`close`) so its connections are reused
    across calls and closed at the end.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:8000``.
        key: an API key with the ``scorer`` (or ``admin``) role; None for a server run
            with ``--insecure-no-auth``.
        timeout: seconds to wait for each answer.
        retries: retries after the first attempt for connection errors, 429 and
            502/503/504 (0: none).
        backoff: the first retry's wait in seconds, doubled at each retry (with jitter),
            unless the server's ``Retry-After`` says otherwise.
        batch_limit: customers per batch request; match the server's
            ``serve_batch_limit`` (1000 by default).
        transport: an httpx transport, for proxies or custom TLS.
    """

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if batch_limit < 1:
            raise ValueError("batch_limit must be at least 1")
        from churnops import __version__

        headers = {"User-Agent": f"churnops-client/{__version__}"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.retries = retries
        self.backoff = backoff
        self.batch_limit = batch_limit
        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def predict(self, record: Mapping[str, Any], *, explain: bool = False) -> Prediction:
        """Score one customer.

        Args:
            record: the customer's fields by contract column name (and its id).
            explain: also return the top 3 reasons of the score.

        Returns:
            The customer's prediction.

        Raises:
            RequestRejectedError: the record breaks the contract (422, with each field's
                problem in ``body["errors"]``), or the key is refused (401/403).
            ServerError: no answer after every retry.
        """
        body = self._request("POST", "/v1/predict", json=record, params=_explain(explain))
        return Prediction.from_json(body)

    def predict_batch(
        self, records: Sequence[Mapping[str, Any]], *, explain: bool = False
    ) -> list[Prediction]:
        """Score many customers, in request order, ``batch_limit`` per request.

        Args:
            records: the customers (e.g. ``df.to_dict("records")``).
            explain: also return each score's top 3 reasons.

        Returns:
            One prediction per record, in the order given.

        Raises:
            RequestRejectedError: a record breaks the contract; each problem's ``index``
                in ``body["errors"]`` is the record's position in ``records``. Nothing of
                the failing request is returned (earlier requests' scores are dropped).
            ServerError: no answer after every retry.
        """
        out: list[Prediction] = []
        for start in range(0, len(records), self.batch_limit):
            chunk = list(records[start : start + self.batch_limit])
            try:
                body = self._request(
                    "POST",
                    "/v1/predict/batch",
                    json={"customers": chunk},
                    params=_explain(explain),
                )
            except RequestRejectedError as exc:
                if not start:
                    raise
                for problem in exc.body.get("errors", []):
                    if isinstance(problem, dict) and isinstance(problem.get("index"), int):
                        problem["index"] += start
                first, last = start + 1, start + len(chunk)
                raise RequestRejectedError(
                    f"{exc.message} (numbered within the request of records {first} to {last}; "
                    "body['errors'] gives each problem's index in the whole list)",
                    exc.status,
                    exc.body,
                ) from None
            out.extend(Prediction.from_json(item) for item in body["predictions"])
        return out

    def health(self) -> dict[str, Any]:
        """Return ``GET /healthz``: ``{"status": "ok"}`` while the process runs."""
        return self._request("GET", "/healthz")

    def ready(self) -> bool:
        """Return whether the server has a model loaded and takes traffic (``/readyz``).

        Asked once, without retries: a probe wants the answer now, and "not reachable"
        is "not ready".
        """
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def _request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """Send a request, retrying what can be retried; return the JSON answer."""
        content = None if json is None else orjson.dumps(json, option=orjson.OPT_SERIALIZE_NUMPY)
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method, path, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise ServerError(
                        f"{method} {self._http.base_url}{path} failed after "
                        f"{attempt + 1} attempt(s): {type(exc).__name__}: {exc}"
                    ) from exc
                wait = self._wait(attempt, None)
            else:
                if response.is_success:
                    return response.json()
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    raise _error(method, path, response, attempt + 1)
                wait = self._wait(attempt, response.headers.get("Retry-After"))
            time.sleep(wait)
            attempt += 1

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before the next attempt: Retry-After when given, else backoff."""
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), MAX_WAIT_SECONDS)
            except ValueError:
                pass  # an HTTP date: fall back to the backoff
        delay = self.backoff * 2**attempt
        return min(delay * random.uniform(0.5, 1.0), MAX_WAIT_SECONDS)


def _known(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` from the fields it knows: a newer server may send more."""
    return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # type: ignore[call-arg]


def _explain(explain: bool) -> dict[str, str] | None:
    return {"explain": "true"} if explain else None


def _error(method: str, path: str, response: httpx.Response, attempts: int) -> ClientError:
    """Turn an error answer into the client's error, quoting the API's own message."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"message": response.text[:500]}
    status = response.status_code
    message = f"{method} {path} answered {status}"
    if body.get("error"):
        message += f" {body['error']}"
    if body.get("message"):
        message += f": {body['message']}"
    if status in RETRY_STATUSES or status >= 500:
        return ServerError(f"{message} (after {attempts} attempt(s))", status, body)
    return RequestRejectedError(message, status, body)
