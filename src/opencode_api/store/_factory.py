"""``open_store(url)``: the backend a ``DATABASE_URL`` names, built but not yet opened."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opencode_api.settings import Settings
from opencode_api.store._errors import UnsupportedDatabaseURL
from opencode_api.store._postgres import PostgresStore
from opencode_api.store._protocol import Store
from opencode_api.store._sqlite import SqliteStore
from opencode_api.store._supabase import SupabaseStore

_DEFAULT_STATEMENT_CACHE_SIZE = 100


def _postgres(url: str, options: dict[str, Any]) -> PostgresStore:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    # asyncpg would send unknown query parameters to the server as settings: take ours out.
    cache_size = _DEFAULT_STATEMENT_CACHE_SIZE
    kept = []
    for key, value in query:
        if key == "statement_cache_size":
            cache_size = int(value)
        else:
            kept.append((key, value))
    options.setdefault("statement_cache_size", cache_size)
    dsn = urlunsplit(parts._replace(query=urlencode(kept)))
    return PostgresStore(dsn, **options)


def open_store(url: str, **options: Any) -> Store:
    """Build the store for ``url``; the caller awaits ``store.open()`` and ``store.close()``.

    - ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``
      (options: ``readers``, ``busy_timeout_ms``);
    - ``postgresql://...`` or ``postgres://...`` (options: ``statement_cache_size``, also read
      from a ``?statement_cache_size=0`` query parameter, default 100; ``min_size``,
      ``max_size``, ``command_timeout``);
    - ``supabase:`` (options ``supabase_url`` and ``supabase_key``, required).

    Raises UnsupportedDatabaseURL for any other scheme.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            raise UnsupportedDatabaseURL(f"expected sqlite:///path, got {url!r}")
        return SqliteStore(url.removeprefix("sqlite:///"), **options)
    if scheme in ("postgresql", "postgres"):
        return _postgres(url, dict(options))
    if scheme == "supabase":
        supabase_url = options.pop("supabase_url", None)
        supabase_key = options.pop("supabase_key", None)
        if not supabase_url or not supabase_key:
            raise UnsupportedDatabaseURL("supabase: needs options supabase_url and supabase_key")
        key = getattr(supabase_key, "get_secret_value", lambda: supabase_key)()
        return SupabaseStore(str(supabase_url), str(key), **options)
    raise UnsupportedDatabaseURL(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///, postgresql:// or supabase:"
    )


def open_store_for(settings: Settings) -> Store:
    """The store ``settings`` select (not opened yet)."""
    url = settings.resolved_database_url()
    options: dict[str, Any] = {}
    if url.startswith("postgres"):
        options["max_size"] = settings.database_pool_size
        options["command_timeout"] = settings.database_statement_timeout
        if settings.pg_statement_cache_size is not None:
            options["statement_cache_size"] = settings.pg_statement_cache_size
    elif url.startswith("supabase"):
        options["supabase_url"] = settings.supabase_url
        options["supabase_key"] = (
            settings.supabase_key.get_secret_value() if settings.supabase_key else None
        )
    return open_store(url, **options)
