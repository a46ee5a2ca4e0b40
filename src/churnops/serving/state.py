"""What the service is serving: the champion, maybe a challenger, and how to swap them.

Requests read ``state.champion`` once into a local variable and use only that object, so a
reload — which builds the new predictor completely (load, compile, score a test record)
before it assigns the attribute — can never be seen half done: a request uses either the
old model or the new one. A failed reload leaves the attribute untouched.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from churnops.config import Settings
from churnops.errors import ChurnopsError, ModelIntegrityError, ModelNotFoundError, ReloadError
from churnops.scoring import Predictor
from churnops.serving.metrics import Metrics

log = logging.getLogger("churnops.serving")

CHAMPION, CHALLENGER, SHADOW = "champion", "challenger", "shadow"
Loader = Callable[[str], Predictor]


def freeze_heap() -> None:
    """Put every object alive now out of the cyclic garbage collector's reach.

    Why: once MLflow, pandas, scikit-learn and a model are loaded the heap holds about a
    million tracked objects, and CPython's full (generation-2) collection walks them all:
    ~150 ms on a 2-core machine, every ~30 s at 100 req/s, with the event loop stopped —
    the API's whole p99 tail. What is alive after a model install is long-lived state
    (modules, the model), so freezing it costs nothing later; the objects of a model
    replaced by a reload are still freed by reference counting (only their reference
    cycles stay), so a reload keeps at most one model's cycles.
    """
    gc.freeze()


def canary_bucket(customer_id: str) -> float:
    """Return a stable number in [0, 1) for a customer id (same id, same bucket, anywhere)."""
    digest = hashlib.blake2b(customer_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class ReloadResult:
    """Which versions served before and after a reload."""

    old_version: str | None
    new_version: str
    challenger_version: str | None
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "challenger_version": self.challenger_version,
            "changed": self.changed,
        }


class ModelState:
    """The loaded models and the rules that pick one per request."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        loader: Loader | None = None,
        fallback: Callable[[], Predictor] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.loader = loader or self._from_registry
        self.fallback = (
            fallback if fallback is not None else (self._from_last_good if loader is None else None)
        )
        self.champion: Predictor | None = None
        self.challenger: Predictor | None = None
        self.canary_share = settings.serve_canary_share
        self.shadow = settings.serve_shadow
        self.not_ready_reason = "the model is loading"
        self.warnings: list[str] = []
        self._reload_lock = asyncio.Lock()

    @property
    def wants_challenger(self) -> bool:
        """Return True when shadow or canary needs the challenger loaded."""
        return self.shadow or self.canary_share > 0

    def pick(self, customer_id: str | None) -> tuple[Predictor, str]:
        """Return the predictor and variant serving this customer (canary by id hash)."""
        champion = self.champion
        if champion is None:
            from churnops.errors import ModelNotReadyError

            raise ModelNotReadyError(
                f"No model loaded yet: {self.not_ready_reason}.", headers={"Retry-After": "5"}
            )
        challenger = self.challenger
        if (
            challenger is not None
            and self.canary_share > 0
            and customer_id is not None
            and canary_bucket(customer_id) < self.canary_share
        ):
            return challenger, CHALLENGER
        return champion, CHAMPION

    def load_initial(self) -> Predictor:
        """Load the champion (or the last-known-good copy) and the challenger if needed."""
        try:
            champion = self.loader(CHAMPION)
        except ChurnopsError as exc:
            if self.fallback is None:
                raise
            try:
                champion = self.fallback()
            except ModelIntegrityError as copy_exc:  # a copy exists but was changed on disk
                raise ModelNotFoundError(
                    f"Cannot load the champion ({exc.message}) and the last-known-good copy "
                    f"was refused ({copy_exc.message})."
                ) from copy_exc
            except ChurnopsError:
                raise ModelNotFoundError(
                    f"Cannot load the champion ({exc.message}) and there is no last-known-good "
                    "copy under CHURNOPS_HOME/serving/last-good. Train and register a model "
                    "(`churnops train`), or check the MLflow tracking URI."
                ) from exc
            warning = (
                f"Registry unreachable or champion missing ({exc.message}); serving the "
                f"last-known-good copy v{champion.version}."
            )
            self.warnings.append(warning)
            log.warning(warning)
        self._install(champion, None)
        if self.wants_challenger:
            self._load_challenger()
        return champion

    def _load_challenger(self) -> None:
        try:
            challenger = self.loader(CHALLENGER)
        except ChurnopsError as exc:
            log.warning("no challenger loaded, serving the champion only: %s", exc.message)
            return
        previous, self.challenger = self.challenger, challenger
        self.metrics.set_model(CHALLENGER, challenger, previous)

    async def reload(self) -> ReloadResult:
        """Load the current champion (and challenger) and swap them in when ready."""
        async with self._reload_lock:
            old = self.champion
            try:
                new = await asyncio.to_thread(self.loader, CHAMPION)
            except Exception as exc:
                self.metrics.reloads.labels("failed").inc()
                serving = f"v{old.version}" if old else "no model"
                reason = (
                    exc.message
                    if isinstance(exc, ChurnopsError)
                    else f"{type(exc).__name__}: {exc}"
                )
                log.error("reload failed, still serving %s: %s", serving, reason)
                raise ReloadError(
                    f"Reload failed, still serving {serving}: {reason}",
                    {"serving_version": old.version if old else None, "reason": reason},
                ) from exc
            self._install(new, old)
            if self.wants_challenger:
                await asyncio.to_thread(self._load_challenger)
            self.metrics.reloads.labels("ok").inc()
            changed = old is None or old.version != new.version
            log.info(
                "reloaded champion",
                extra={"old_version": old.version if old else None, "new_version": new.version},
            )
            return ReloadResult(
                old.version if old else None,
                new.version,
                self.challenger.version if self.challenger else None,
                changed,
            )

    async def poll(self, interval: float) -> None:
        """Reload whenever the champion (or challenger) alias points at another version."""
        from churnops.registry import get_version

        while True:
            await asyncio.sleep(interval)
            try:
                current = await asyncio.to_thread(get_version, self.settings, None, CHAMPION)
                moved = self.champion is None or current.version != self.champion.version
                if self.wants_challenger and not moved:
                    chall = await asyncio.to_thread(get_version, self.settings, None, CHALLENGER)
                    moved = self.challenger is None or chall.version != self.challenger.version
                if moved:
                    await self.reload()
            except ChurnopsError as exc:
                log.warning("alias poll: %s", exc.message)
            except Exception:  # keep polling whatever happens
                log.exception("alias poll failed")

    def _install(self, new: Predictor, old: Predictor | None) -> None:
        self.champion = new
        self.metrics.set_model(CHAMPION, new, old)
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        freeze_heap()

    def _from_registry(self, alias: str) -> Predictor:
        from churnops import registry

        loaded = registry.load_model(self.settings, alias=alias)
        predictor = Predictor.from_loaded(loaded)
        if alias == CHAMPION:
            try:
                registry.save_last_good(self.settings, loaded)
            except OSError as exc:
                log.warning("cannot write the last-known-good copy: %s", exc)
        return predictor

    def _from_last_good(self) -> Predictor:
        from churnops import registry

        return Predictor.from_loaded(registry.load_last_good(self.settings), "last-known-good")
