"""Read the model registry without importing MLflow, when the registry is a SQL database.

Why: importing ``mlflow`` costs 1.5-2.5 s, and ``churnops score``, ``churnops models``
and the API's start only *read* the registry: which version an alias names, its tags and
where its files are. With the embedded default (SQLite) or PostgreSQL as the tracking
store, that is four of MLflow's own tables — ``registered_models``,
``registered_model_aliases``, ``model_versions``, ``model_version_tags`` — read here with
SQLAlchemy. An HTTP tracking server (or a non-local artifact store) goes through
``MlflowClient`` instead (:class:`MlflowCatalog`): same answers, MLflow's price.

Only reads live here; registering, promoting and rolling back write through MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
# Where a churnops model keeps its files and how a version records their integrity
# (model-version tags, and the pyfunc's model_config for MLflow's own loaders).
SCORING = "scoring"  # the pyfunc artifacts key: the folder of churnops model files
MANIFEST_KEY = "churnops.sha256"  # compact JSON {relative path: SHA-256}
FORMAT_KEY = "churnops.format_version"
HMAC_KEY = "churnops.hmac"  # HMAC-SHA256 of the manifest, when a signing key is set
DELETED_STAGE = "Deleted_Internal"  # MLflow's soft-deleted versions
DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True)
class VersionRecord:
    """One model version as the registry stores it."""

    name: str
    version: str
    run_id: str
    created_ms: int
    source: str
    storage_location: str | None
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


class Catalog(Protocol):
    """The registry reads churnops needs (None / [] when there is nothing)."""

    def version(self, name: str, version: str) -> VersionRecord | None: ...

    def alias(self, name: str, alias: str) -> str | None: ...

    def versions(self, name: str) -> list[VersionRecord]: ...

    def artifact_root(self, run_id: str) -> str | None: ...


def is_sql_uri(uri: str) -> bool:
    """Return True when the tracking URI is a database this module can read directly."""
    return urlparse(uri).scheme.split("+", 1)[0] in SQL_SCHEMES


def catalog_for(tracking_uri: str) -> Catalog:
    """Return the cheapest catalog for a tracking URI (SQL when possible, else MLflow)."""
    if is_sql_uri(tracking_uri):
        return SqlCatalog(tracking_uri)
    return MlflowCatalog(tracking_uri)


def local_path(uri: str | None) -> Path | None:
    """Return the local folder of a ``file://`` URI or plain path; None for anything remote."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri)  # a plain path (a Windows drive letter parses as a scheme)
    return None


class SqlCatalog:
    """MLflow's registry tables read with SQLAlchemy Core (no ORM models, no MLflow)."""

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri

    def version(self, name: str, version: str) -> VersionRecord | None:
        """Return version ``version`` of ``name``, or None."""
        if not str(version).isdigit():
            return None
        found = self._versions(name, int(version))
        return found[0] if found else None

    def alias(self, name: str, alias: str) -> str | None:
        """Return the version number ``alias`` points at, or None."""
        t = self._tables()
        if t is None:
            return None
        sa, aliases = t["sa"], t["registered_model_aliases"]
        query = sa.select(aliases.c.version).where(
            aliases.c.name == name, aliases.c.alias == alias, *self._workspace(aliases)
        )
        with t["engine"].connect() as conn:
            row = conn.execute(query).first()
        return str(row[0]) if row else None

    def versions(self, name: str) -> list[VersionRecord]:
        """Return every live version of ``name``, newest first."""
        return self._versions(name, None)

    def artifact_root(self, run_id: str) -> str | None:
        """Return the artifact URI of a run (where its logged tables are), or None."""
        t = self._tables()
        if t is None:
            return None
        runs = t["runs"]
        query = t["sa"].select(runs.c.artifact_uri).where(runs.c.run_uuid == run_id)
        with t["engine"].connect() as conn:
            row = conn.execute(query).first()
        return row[0] if row else None

    def _versions(self, name: str, version: int | None) -> list[VersionRecord]:
        t = self._tables()
        if t is None:
            return []
        sa = t["sa"]
        mv, tags, aliases = (
            t["model_versions"],
            t["model_version_tags"],
            t["registered_model_aliases"],
        )
        where = [mv.c.name == name, mv.c.current_stage != DELETED_STAGE, *self._workspace(mv)]
        if version is not None:
            where.append(mv.c.version == version)
        with t["engine"].connect() as conn:
            rows = conn.execute(sa.select(mv).where(*where).order_by(mv.c.version.desc())).all()
            tag_rows = conn.execute(
                sa.select(tags.c.version, tags.c.key, tags.c.value).where(
                    tags.c.name == name, *self._workspace(tags)
                )
            ).all()
            alias_rows = conn.execute(
                sa.select(aliases.c.version, aliases.c.alias).where(
                    aliases.c.name == name, *self._workspace(aliases)
                )
            ).all()
        by_version: dict[int, dict[str, str]] = {}
        for v, key, value in tag_rows:
            by_version.setdefault(int(v), {})[key] = value
        named: dict[int, list[str]] = {}
        for v, alias in alias_rows:
            named.setdefault(int(v), []).append(alias)
        columns = mv.c.keys()
        return [
            VersionRecord(
                name=row.name,
                version=str(row.version),
                run_id=row.run_id or "",
                created_ms=int(row.creation_time or 0),
                source=row.source or "",
                storage_location=row.storage_location if "storage_location" in columns else None,
                aliases=sorted(named.get(int(row.version), [])),
                tags=by_version.get(int(row.version), {}),
            )
            for row in rows
        ]

    def _workspace(self, table: Any) -> list[Any]:
        # MLflow 3.x added workspaces; the embedded store only ever uses the default one.
        return [table.c.workspace == DEFAULT_WORKSPACE] if "workspace" in table.c else []

    def _tables(self) -> dict[str, Any] | None:
        """Return the reflected registry tables, or None when the store has none yet."""
        return _reflect(self.uri)


@lru_cache(maxsize=8)
def _engine(uri: str) -> Any:
    import sqlalchemy as sa

    if uri.startswith("postgresql://"):
        from importlib.util import find_spec

        if find_spec("psycopg2") is None:  # MLflow's default driver; the project ships psycopg 3
            uri = "postgresql+psycopg://" + uri.removeprefix("postgresql://")
    return sa.create_engine(uri, pool_pre_ping=True)


_REFLECTED: dict[str, dict[str, Any]] = {}


def _reflect(uri: str) -> dict[str, Any] | None:
    """Return the registry tables of ``uri`` (reflected once per process, when they exist)."""
    import sqlalchemy as sa

    if uri in _REFLECTED:
        return _REFLECTED[uri]
    if uri.startswith("sqlite:"):
        path = uri.split(":///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            return None  # nothing registered yet: do not create an empty database file
    engine = _engine(uri)
    names = (
        "runs",
        "registered_models",
        "registered_model_aliases",
        "model_versions",
        "model_version_tags",
    )
    metadata = sa.MetaData()
    try:
        metadata.reflect(engine, only=names)
    except sa.exc.InvalidRequestError:  # a store MLflow has not initialised
        return None
    tables = {"sa": sa, "engine": engine, **{n: metadata.tables[n] for n in names}}
    _REFLECTED[uri] = tables
    return tables


class MlflowCatalog:
    """The same reads through ``MlflowClient`` (HTTP tracking servers, remote stores)."""

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri

    def _client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(self.uri, self.uri)

    def version(self, name: str, version: str) -> VersionRecord | None:
        """Return version ``version`` of ``name``, or None."""
        from mlflow.exceptions import MlflowException

        client = self._client()
        try:
            return self._record(client, client.get_model_version(name, str(version)))
        except MlflowException:
            return None

    def alias(self, name: str, alias: str) -> str | None:
        """Return the version number ``alias`` points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client().get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def versions(self, name: str) -> list[VersionRecord]:
        """Return every version of ``name``, newest first."""
        client = self._client()
        found = client.search_model_versions(f"name = '{name}'")
        records = [self._record(client, mv) for mv in found]
        return sorted(records, key=lambda r: int(r.version), reverse=True)

    def artifact_root(self, run_id: str) -> str | None:
        """None: remote stores download a run's files through MLflow."""
        return None

    @staticmethod
    def _record(client: Any, mv: Any) -> VersionRecord:
        aliases = list(getattr(mv, "aliases", []) or [])
        if not aliases:  # search results omit aliases on some stores
            aliases = list(client.get_model_version(mv.name, mv.version).aliases or [])
        return VersionRecord(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or "",
            created_ms=int(mv.creation_timestamp or 0),
            source=mv.source or "",
            storage_location=getattr(mv, "storage_location", None),
            aliases=sorted(aliases),
            tags=dict(mv.tags or {}),
        )
