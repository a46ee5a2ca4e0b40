"""Scoring routes: one customer, or a batch, against the contract of the serving model.

Both read the raw body (orjson) and validate with the predictor's RecordCodec instead of a
pydantic body parameter: the 422 names the field, what was sent and what is allowed, and
the whole request costs a few tens of microseconds of Python. ``CustomerIn`` still
documents the body in ``/docs`` (see ``serving/app.py``).

Nesting depth is checked on the raw bytes before parsing: a record is one level deep and
a batch three, while 2 KB of ``[`` parses fine and then breaks whatever walks it
recursively (a 500). One customer, and a batch of up to ``serve_inline_batch`` customers
(default 1,000, the default batch limit), is scored on the event loop: scoring 1,000
customers takes ~2 ms, and handing them to a thread cost more than that (the hop, and the
event loop and the thread taking the GIL from each other: 8.9 against 7.2 ms of CPU per
1,000-customer request, measured in process). A larger batch is scored in a worker thread,
at most ``serve_max_concurrent_batches`` at once (503 beyond): a request timeout cannot
stop CPU-bound scoring, so bounding it is what keeps the event loop answering.
"""

from __future__ import annotations

import random
import time
from hashlib import sha256
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from numba import njit

from churnops.batch.report import reason_sentence
from churnops.data.rules import Verdict, ids_accepted, judge_id
from churnops.errors import ScoringInputError
from churnops.scoring import Predictor, RecordCodec
from churnops.serving.deps import ScorerKeyDep, Services
from churnops.serving.schemas import ErrorOut, PredictionOut, PredictionsOut
from churnops.serving.state import CHAMPION, SHADOW

router = APIRouter(tags=["predict"])

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorOut, "description": "The key's role may not call this route"},
    413: {"model": ErrorOut, "description": "Request body too large"},
    422: {"model": ErrorOut, "description": "Which field, what was sent, what is allowed"},
    429: {"model": ErrorOut, "description": "Rate limit exceeded; see Retry-After"},
    503: {"model": ErrorOut, "description": "No model loaded yet, or busy; see Retry-After"},
}
ONE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CustomerIn"}}},
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CustomersIn"}}},
    }
}
JSON = "application/json"
SMALL_BODY = 65_536  # bytes; one customer is ~0.6 KB, a 1,000-customer batch ~400 KB
# ``?explain`` is read by hand (``_explain``): a declared ``explain: bool`` query parameter
# costs every request FastAPI's parameter validation, ~10 µs measured, even without a query
# string. It is documented here instead, exactly as FastAPI would have.
EXPLAIN = {
    "name": "explain",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False, "title": "Explain"},
    "description": "Also return the top 3 reasons of each score (feature, signed "
    "contribution, the customer's value, and the text people read).",
}
_TRUE = frozenset(("1", "on", "t", "true", "y", "yes"))  # what pydantic accepts for a bool
_FALSE = frozenset(("0", "off", "f", "false", "n", "no"))


def explain_flag(query_string: bytes) -> bool:
    """Return ``?explain`` as a bool (a 422 like FastAPI's for anything else).

    Read from the raw query string; the last ``explain=`` wins, as in Starlette's
    ``request.query_params``.
    """
    if not query_string:
        return False
    value = None
    for name, text in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "explain":
            value = text
    if value is None:
        return False
    text = value.lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RequestValidationError(
        [
            {
                "type": "bool_parsing",
                "loc": ("query", "explain"),
                "msg": "Input should be a valid boolean, unable to interpret input",
                "input": value,
            }
        ]
    )


def _open(services: Services, state: dict[str, Any], body: bytes) -> Any:
    """Parse the body, opening the request's audit record with its digest."""
    state["audit"] = {"payload_digest": sha256(body).hexdigest()}
    return _parse(body, services.settings.serve_max_json_depth)


def _parse(body: bytes, max_depth: int) -> Any:
    depth = _depth(body, max_depth)
    if depth > max_depth:
        raise ScoringInputError(
            f"The request body is nested {depth} levels deep; the limit is {max_depth}.",
            {
                "errors": [
                    {
                        "field": None,
                        "message": f"JSON nested deeper than {max_depth} levels",
                        "sent": depth,
                        "allowed": {"max_depth": max_depth},
                    }
                ]
            },
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ScoringInputError(
            f"The request body is not valid JSON: {exc}.",
            {"errors": [{"field": None, "message": "invalid JSON", "sent": None}]},
        ) from None


def _depth(body: bytes, limit: int) -> int:
    """Return the deepest nesting of ``body`` as JSON (exact for valid JSON), or 0 early.

    A small body with no more brackets than ``limit`` cannot exceed it (one customer: two
    ``count`` calls, no scan); a large one has more brackets than any limit, so it is
    scanned without counting. Otherwise one compiled pass over the bytes (~1 ns each:
    ~0.4 ms for 1,000 customers) that skips string contents, escapes included.
    """
    if len(body) <= SMALL_BODY and body.count(b"[") + body.count(b"{") <= limit:
        return 0
    return int(_scan_depth(np.frombuffer(body, dtype=np.uint8)))


@njit(cache=True, nogil=True)
def _scan_depth(text: Any) -> int:  # pragma: no cover - compiled
    depth = deepest = 0
    inside = escaped = False
    for c in text:
        if inside:
            if escaped:
                escaped = False
            elif c == 92:  # backslash
                escaped = True
            elif c == 34:  # closing quote
                inside = False
        elif c == 34:
            inside = True
        elif c == 91 or c == 123:  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif c == 93 or c == 125:  # ] }
            depth -= 1
    return deepest


@router.post(
    "/v1/predict",
    response_model=PredictionOut,
    responses=ERROR_RESPONSES,
    openapi_extra={**ONE_BODY, "parameters": [EXPLAIN]},
    summary="Score one customer",
)
async def predict(request: Request, _principal: ScorerKeyDep) -> Response:
    """Return the churn probability and flag of one customer (``?explain=true``: top reasons)."""
    explain = explain_flag(request.scope["query_string"])
    body = await request.body()
    return Response(
        score_one(request.app.state.services, request.scope, body, explain), media_type=JSON
    )


@router.post(
    "/v1/predict/batch",
    response_model=PredictionsOut,
    responses=ERROR_RESPONSES,
    openapi_extra={**BATCH_BODY, "parameters": [EXPLAIN]},
    summary="Score up to serve_batch_limit customers",
)
async def predict_batch(request: Request, _principal: ScorerKeyDep) -> Response:
    """Score ``{"customers": [...]}``; results come back in request order."""
    explain = explain_flag(request.scope["query_string"])
    body = await request.body()
    answer = await score_batch(request.app.state.services, request.scope, body, explain)
    return Response(answer, media_type=JSON)


def score_one(services: Services, scope: dict[str, Any], body: bytes, explain: bool) -> bytes:
    """Score the one customer in ``body``; return the JSON answer (the ``/v1/predict`` work).

    Synchronous on purpose: one customer takes microseconds on the event loop, less than
    a hop to a thread.
    """
    state = scope["state"]
    record = _open(services, state, body)
    audit = state["audit"]
    models = services.models
    customer_id = None
    if type(record) is dict:
        champion = models.champion
        id_column = champion.codec.id_column if champion is not None else None
        if id_column is not None:
            customer_id = _id_text(record.get(id_column))
            if customer_id is not None:
                audit["customer_ids"] = [customer_id]
                audit["n_customers"] = 1
    predictor, variant = models.pick(customer_id)
    state["variant"] = variant
    audit["model_version"] = predictor.version
    audit["variant"] = variant
    p, row = predictor.score_one(record)
    churn = p >= predictor.threshold
    audit["probabilities"] = [p]
    out: dict[str, Any] = {
        "customer_id": customer_id,
        "probability": p,
        "churn": churn,
        "model": _model_ref(predictor, variant),
    }
    if explain:
        out["reasons"] = _with_text(predictor.reasons([row])[0])
    services.metrics.observe_one(variant, p, churn)
    _log_and_shadow(services, predictor, variant, state["request_id"], [record], [p])
    return orjson.dumps(out)


async def score_batch(
    services: Services, scope: dict[str, Any], body: bytes, explain: bool
) -> bytes:
    """Score ``{"customers": [...]}`` in ``body``; return the JSON answer, in request order."""
    state = scope["state"]
    payload = _open(services, state, body)
    records = _customers(payload, services.settings.serve_batch_limit)
    models = services.models
    champion = models.champion
    id_column = champion.codec.id_column if champion is not None else None
    ids: list[str | None] = [None] * len(records)
    if id_column is not None:
        raw = [r.get(id_column) if type(r) is dict else None for r in records]
        ids = raw if ids_accepted(raw) else [_id_text(v) for v in raw]
    state["audit"].update({"customer_ids": ids, "n_customers": len(records)})
    # Canary: group customers by the variant that serves them (usually one group).
    groups: dict[str, tuple[Predictor, list[int]]] = {}
    if models.challenger is None or models.canary_share <= 0:
        predictor, variant = models.pick(None)  # no canary: everyone gets the champion
        groups[variant] = (predictor, list(range(len(records))))
    else:
        for i, cid in enumerate(ids):
            predictor, variant = models.pick(cid)
            if variant not in groups:
                groups[variant] = (predictor, [])
            groups[variant][1].append(i)
    # Ids were judged above by the champion's id rule; a scorer with that id column need
    # not judge them again when none was refused.
    judged = id_column if id_column is not None and None not in ids else False
    if len(records) <= services.settings.serve_inline_batch:
        scored = _score_groups(groups, records, explain, judged)
    else:
        scored = await services.scoring.run(_score_groups, groups, records, explain, judged)
    results: list[dict[str, Any] | None] = [None] * len(records)
    audits = []
    for (variant, (predictor, idx)), (subset, probs, reasons) in zip(
        groups.items(), scored, strict=True
    ):
        ref = _model_ref(predictor, variant)
        threshold = predictor.threshold
        plist = probs.tolist()
        for j, (i, p) in enumerate(zip(idx, plist, strict=True)):
            item: dict[str, Any] = {
                "customer_id": ids[i],
                "probability": p,
                "churn": p >= threshold,
                "model": ref,
            }
            if reasons is not None:
                item["reasons"] = reasons[j]
            results[i] = item
        services.metrics.observe_probabilities(variant, probs, threshold)
        _log_and_shadow(services, predictor, variant, state["request_id"], subset, probs)
        audits.append(
            {
                **state["audit"],
                "customer_ids": [ids[i] for i in idx] if len(groups) > 1 else ids,
                "n_customers": len(idx),
                "model_version": predictor.version,
                "variant": variant,
                "probabilities": plist,
            }
        )
    state["audit"] = audits
    state["variant"] = next(iter(groups)) if len(groups) == 1 else "mixed"
    return orjson.dumps({"predictions": results, "count": len(results)})


def _model_ref(predictor: Predictor, variant: str) -> dict[str, str]:
    return {"name": predictor.name, "version": predictor.version, "variant": variant}


Scored = tuple[list[Any], np.ndarray, list[list[dict[str, Any]]] | None]


def _score_groups(
    groups: dict[str, tuple[Predictor, list[int]]],
    records: list[Any],
    explain: bool,
    ids_judged_by: str | bool,
) -> list[Scored]:
    """Score each variant's customers (CPU-bound: runs in a worker thread).

    ``ids_judged_by``: the id column every record's id was judged (and accepted) by, or
    False.
    """
    scored = []
    for predictor, idx in groups.values():
        subset = records if len(idx) == len(records) else [records[i] for i in idx]
        try:
            probs, rows = predictor.score_many(
                subset, ids_judged=predictor.codec.id_column == ids_judged_by
            )
        except ScoringInputError as exc:
            if len(idx) == len(records):
                raise
            _fail_in_request(exc, idx)
        reasons = [_with_text(r) for r in predictor.reasons(rows)] if explain else None
        scored.append((subset, probs, reasons))
    return scored


def _fail_in_request(exc: ScoringInputError, idx: list[int]) -> None:
    """Raise a canary group's 422 again with positions in the request, not in the group.

    ``errors[].index`` becomes the record's 0-based position in ``customers`` and the
    message ("record N", counted from 1) is built again from it by the codec's own wording.
    Only a refused batch split by the canary comes here, so scoring pays nothing for it.
    """
    problems = exc.details["errors"]
    for problem in problems:
        problem["index"] = idx[problem["index"]]
    RecordCodec._fail(problems, None)


def _with_text(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each reason's sentence for people (``text``): one f-string per reason."""
    for reason in reasons:
        reason["text"] = reason_sentence(reason)
    return reasons


def _customers(payload: Any, limit: int) -> list[Any]:
    customers = payload.get("customers") if isinstance(payload, dict) else None
    if not isinstance(customers, list):
        raise ScoringInputError(
            'The body must be {"customers": [ ... ]}.',
            {
                "errors": [
                    {
                        "field": "customers",
                        "message": "expects a list of customers",
                        "sent": type(customers).__name__ if customers is not None else None,
                        "allowed": "array",
                    }
                ]
            },
        )
    extra = sorted(set(payload) - {"customers"})
    problems = []
    if extra:
        problems.append(
            {"field": extra[0], "message": "unknown field", "sent": None, "allowed": ["customers"]}
        )
    if not 1 <= len(customers) <= limit:
        problems.append(
            {
                "field": "customers",
                "message": f"expects 1 to {limit} customers",
                "sent": len(customers),
                "allowed": {"min": 1, "max": limit},
            }
        )
    if problems:
        first = problems[0]
        raise ScoringInputError(
            f"field {first['field']!r}: {first['message']}, sent {first['sent']!r}.",
            {"errors": problems},
        )
    return customers


def _log_and_shadow(
    services: Services,
    predictor: Predictor,
    variant: str,
    request_id: str,
    records: list[Any],
    probs: np.ndarray | list[float],
) -> None:
    """Queue the sampled prediction-log rows and, in shadow mode, the challenger's scoring."""
    writer = services.audit
    if writer is None:
        return
    rate = services.settings.serve_log_sample
    if rate > 0:
        picked = (
            range(len(records))
            if rate >= 1.0
            else [i for i in range(len(records)) if random.random() < rate]
        )
        if picked:
            at = time.time()
            threshold = predictor.threshold
            id_column = predictor.codec.id_column
            # Tuples in PREDICTION_FIELDS order, handed to the writer process.
            writer.predictions(
                [
                    (
                        at,
                        request_id,
                        predictor.name,
                        predictor.version,
                        variant,
                        _text(records[i].get(id_column)) if id_column else None,
                        records[i],
                        float(probs[i]),
                        bool(probs[i] >= threshold),
                    )
                    for i in picked
                ]
            )
    models = services.models
    challenger = models.challenger
    if models.shadow and variant == CHAMPION and challenger is not None:
        writer.job(lambda: _shadow(services, challenger, request_id, records))


def _shadow(
    services: Services, challenger: Predictor, request_id: str, records: list[Any]
) -> list[tuple[Any, ...]]:
    """Score the challenger on what the champion just scored; return its log rows."""
    try:
        probs, _ = challenger.score_many(records)
    except Exception:
        services.metrics.shadow_errors.inc()
        return []
    threshold = challenger.threshold
    services.metrics.observe_probabilities(SHADOW, probs, threshold)
    at = time.time()
    id_column = challenger.codec.id_column
    return [
        (
            at,
            request_id,
            challenger.name,
            challenger.version,
            SHADOW,
            _text(r.get(id_column)) if id_column else None,
            r,
            float(p),
            bool(p >= threshold),
        )
        for r, p in zip(records, probs.tolist(), strict=True)
    ]


def _id_text(raw: Any) -> str | None:
    """Return a customer id as text by the contract's id rule, None when it refuses it.

    Routing (canary) and the audit log read ids before the record is judged; a refused id
    (blank, too long, control characters) is never routed on or written.
    """
    verdict = judge_id(raw)
    return None if isinstance(verdict, Verdict) else verdict


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
