"""Configuration from the environment (and a ``.env`` file when present)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# A comma-separated list in the environment (``a.example,b.example``).
CsvList = Annotated[list[str], NoDecode, BeforeValidator(_split_csv)]


class Settings(BaseSettings):
    """Every knob of the server and the runtime. Names are the environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # -- server ---------------------------------------------------------------------------
    host: str = "0.0.0.0"
    port: int = 7860
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = False
    listen_backlog: int = 4096
    # A file prefix: profile the server with cProfile, one window per SIGUSR1 (_profiling.py).
    cpu_profile: str | None = None
    # Several worker processes (one core each) sharing the port; sessions are owned by
    # hash(session id) % WORKERS and requests reach their owner (actors/_worker_placement.py).
    workers: int = 1
    worker_index: int = 0
    worker_socket_dir: str | None = None
    # Sessions sharded over named Ray actors (``serve --ray``): the cluster's address ("auto"
    # for a running local one, "" for RAY_ADDRESS or a new local one), how many shards and in
    # which namespace (the same on every front end). Only ``--ray`` sets the address: Ray's own
    # RAY_ADDRESS must not turn sharding on by itself (hence not ``ray_address``).
    ray_cluster: str | None = None
    shards: int = Field(default=16, ge=1)
    shard_namespace: str = "opencode-api"
    # Under load a shard sends each front end at most one batch of events per this many seconds
    # (each Ray item costs ~0.6 ms of CPU); after a quiet spell it sends at once; 0: as they come.
    # 50 ms against 20: a quarter to a third less CPU per turn at 100 steady sessions, no change
    # in a 1,000-session burst or in time to first token (BENCHMARKS.md, session 6).
    shard_batch_window: float = Field(default=0.05, ge=0, le=1)
    cors_origins: CsvList = Field(default_factory=list)
    client_max_size: int = 4 * 1024 * 1024
    # Decoded bytes of the files one message may carry (API.md "Richer input and output"); the
    # message and regenerate routes take bodies up to this plus base64's overhead.
    max_input_bytes: int = Field(default=20 * 1024 * 1024, ge=0)
    shutdown_grace: float = 10.0
    sse_heartbeat: float = 15.0
    sse_write_timeout: float = 10.0

    # -- storage --------------------------------------------------------------------------
    database_url: str | None = None
    supabase_url: str | None = None
    supabase_key: SecretStr | None = None
    pg_statement_cache_size: int | None = None
    # PostgreSQL connections per server process (PgPool; keep processes x pool below
    # PostgreSQL's max_connections). At hundreds of concurrent turns a small pool is the limit:
    # 1,000 concurrent turns measured 84-94 turns/s at 20 and 108-117 at 60 (BENCHMARKS.md).
    database_pool_size: int = Field(default=50, ge=1)
    # Seconds a PostgreSQL statement may take before the client gives up on it (the turn that
    # waited gets an `unavailable` error; the connection is replaced).
    database_statement_timeout: float = Field(default=60.0, gt=0)

    # -- auth and quota ---------------------------------------------------------------------
    opencode_server_password: SecretStr | None = None
    opencode_server_username: str = "opencode"
    supabase_jwt_secret: SecretStr | None = None
    auth_required: bool = False
    jwks_cache_ttl: float = 600.0
    daily_token_limit: int | None = None
    daily_request_limit: int | None = None
    # USD a user may spend per UTC day (API.md "Budgets"); counted step by step while set.
    daily_cost_limit: float | None = Field(default=None, ge=0)
    # Tokens held per turn while it runs when the request gives no max_tokens.
    quota_reserve_tokens: int = 4096

    # -- models -----------------------------------------------------------------------------
    default_model: str = "openai/gpt-4o-mini"
    title_model: str | None = None
    # Generate a title after the first turn of an untitled session (in the background: the
    # session's next turn never waits for it), at most this many title calls at once.
    auto_title: bool = True
    title_concurrency: int = Field(default=16, ge=1)
    anthropic_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    deepseek_api_key: SecretStr | None = None
    mistral_api_key: SecretStr | None = None
    xai_api_key: SecretStr | None = None
    openai_api_base: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_BASE", "OPENAI_BASE_URL")
    )
    anthropic_api_base: str | None = None
    llm_fast_path: Literal["auto", "off"] = "auto"
    llm_timeout: float = 600.0
    # A provider stream that sends nothing for this long ends with a timeout (retried), however
    # long the call may last in all (``llm_timeout``). 0 turns it off.
    llm_stream_idle_timeout: float = 60.0
    # Load LiteLLM and its tokenizer in a thread at start-up instead of inside the first turn.
    llm_warm_up: bool = True
    # Mark turns left running by a dead process at start-up (off in workers: the parent does it
    # once, before any worker serves, so no worker marks another's live turns).
    mark_interrupted_on_start: bool = True
    # A process's claim on its turns lasts this long without renewal (renewed every third of
    # it); turns of an owner whose claim lapsed are marked interrupted by any live process.
    turn_lease_ttl: float = Field(default=30.0, gt=0)
    llm_max_retries: int = 4
    llm_retry_base_delay: float = 1.0
    llm_retry_max_delay: float = 30.0

    # -- agent loop and sessions ------------------------------------------------------------------
    max_steps: int = 50
    compaction_threshold: int = 50
    compaction_context_ratio: float = 0.85
    compaction_keep_messages: int = 6
    tool_output_prune_tokens: int = 40_000
    mailbox_size: int = 100
    outbox_size: int = 4096
    max_live_sessions: int | None = 100_000
    session_idle_ttl: float = 600.0
    question_timeout: float = 300.0
    # How long an abort or a question's answer waits for the session's actor to take it.
    control_timeout: float = 30.0

    # -- tools ------------------------------------------------------------------------------
    exa_api_key: SecretStr | None = None
    exa_api_base: str = "https://api.exa.ai"
    websearch_backend: Literal["auto", "exa", "ddgs"] = "auto"
    webfetch_allow_hosts: CsvList = Field(default_factory=list)
    webfetch_max_bytes: int = 5 * 1024 * 1024

    # -- MCP ----------------------------------------------------------------------------------
    # A JSON file in the ``{"mcpServers": {...}}`` form (tools/_mcp_config.py); each server's
    # tools are offered as ``<server>_<tool>``. Connected in the background at start-up.
    mcp_config: str | None = None
    mcp_call_timeout: float = Field(default=60.0, gt=0)
    # Initialize and list the tools within this long, or the attempt counts as failed.
    mcp_connect_timeout: float = Field(default=30.0, gt=0)
    # A failed or dropped server is retried after base * 2**attempt s (capped, with jitter).
    mcp_reconnect_base_delay: float = Field(default=1.0, gt=0)
    mcp_reconnect_max_delay: float = Field(default=60.0, gt=0)

    # -- webhooks -------------------------------------------------------------------------------
    # Turn and question events POSTed to WEBHOOK_URL (every session) and to each session's own
    # ``webhook_url``, signed as Standard Webhooks say with WEBHOOK_SECRET (``whsec_<base64>``).
    # Without a secret no webhook is sent: WEBHOOK_URL alone refuses to start, and a session's
    # webhook_url is refused with 422 (actors/_webhooks.py).
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # Targets on private, loopback or link-local addresses (refused by default, as for webfetch).
    webhook_allow_private: bool = False
    # One attempt's whole request; attempt n waits base * 2**(n-1) s (capped, +-20% jitter).
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_retry_base_delay: float = Field(default=10.0, gt=0)
    webhook_retry_max_delay: float = Field(default=3600.0, gt=0)
    webhook_concurrency: int = Field(default=8, ge=1)
    # Events waiting to be stored (the store is slow or down) beyond which new ones are dropped.
    webhook_max_pending: int = Field(default=10_000, ge=1)
    # Due deliveries are looked for this often (other processes' retries, leases run out).
    webhook_poll_interval: float = Field(default=5.0, gt=0)

    def resolved_database_url(self) -> str:
        """``DATABASE_URL``; else Supabase REST when configured; else the SQLite default."""
        if self.database_url:
            return self.database_url
        if self.supabase_url and self.supabase_key:
            return "supabase:"
        return "sqlite:///./data/opencode.db"
