"""store/sql/supabase.sql on a real PostgreSQL server: it applies (twice), its functions do what
the fake PostgREST server's Python copies do, and row-level security scopes rows by auth.uid().

Supabase itself is not available here: a stub ``auth.uid()`` reads the JWT subject from the
``request.jwt.claim.sub`` setting the way Supabase's does, and the three API roles are created.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import resources

import asyncpg
import pytest

pytestmark = pytest.mark.postgres

STUB = """
DO $$ BEGIN
    CREATE ROLE anon NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
    CREATE ROLE authenticated NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
    CREATE ROLE service_role NOLOGIN BYPASSRLS;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
    $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
"""
ALICE = "00000000-0000-0000-0000-00000000000a"
BOB = "00000000-0000-0000-0000-00000000000b"


@pytest.fixture
async def db(postgres_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres_database_url)
    sql = (resources.files("opencode_api.store") / "sql" / "supabase.sql").read_text()
    await conn.execute(STUB)
    await conn.execute(sql)
    await conn.execute(sql)  # running it again is harmless
    await conn.execute(
        "GRANT ALL ON ALL TABLES IN SCHEMA public TO authenticated, service_role;"
        "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO service_role"
    )
    try:
        yield conn
    finally:
        await conn.close()


def message(mid: str, session_id: str, **extra: object) -> str:
    row = {
        "id": mid, "session_id": session_id, "role": "assistant", "content": "hi",
        "created_at": "2026-01-01T00:00:00Z", "provider_id": "openai", "model_id": "m",
        "usage": None, "cost": 0, "priced": True, "finish": None, "error": None,
        "status": "running", "parent_id": None, "compacted": False, "summary": False,
        "step_count": 0, **extra,
    }  # fmt: skip
    return json.dumps(row)


def part(pid: str, mid: str, session_id: str) -> dict[str, object]:
    return {
        "id": pid, "message_id": mid, "session_id": session_id, "type": "text",
        "content": "hi", "tool_args": None, "metadata": {}, "created_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip


async def test_functions_and_row_level_security(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO opencode_sessions (id, user_id) VALUES ('ses_a', $1), ('ses_b', $2)",
        ALICE,
        BOB,
    )
    await db.execute(
        "SELECT opencode_append_message($1::jsonb, $2::jsonb)",
        message("msg_1", "ses_a", role="user", status="completed"),
        json.dumps([part("prt_1", "msg_1", "ses_a")]),
    )
    usage = json.dumps({"input_tokens": 10, "output_tokens": 5, "reasoning_tokens": 0,
                        "cache_read_tokens": 0, "cache_write_tokens": 0})  # fmt: skip
    await db.execute(
        "SELECT opencode_save_step($1::jsonb, $2::jsonb, $3::jsonb, 0.5)",
        message("msg_2", "ses_a"),
        json.dumps([part("prt_2", "msg_2", "ses_a")]),
        usage,
    )
    # A step whose second part references a missing message is rolled back entirely.
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute(
            "SELECT opencode_save_step($1::jsonb, $2::jsonb, $3::jsonb, 0.5)",
            message("msg_3", "ses_a"),
            json.dumps([part("prt_3", "msg_3", "ses_a"), part("prt_4", "msg_nope", "ses_a")]),
            usage,
        )
    assert await db.fetchval("SELECT count(*) FROM opencode_messages WHERE id = 'msg_3'") == 0
    row = await db.fetchrow("SELECT * FROM opencode_sessions WHERE id = 'ses_a'")
    assert (row["message_count"], row["total_input_tokens"], row["total_cost"]) == (2, 10, 0.5)
    cost = await db.fetchrow("SELECT * FROM opencode_session_costs WHERE session_id = 'ses_a'")
    assert (cost["messages"], cost["user_id"]) == (1, ALICE)
    assert await db.fetchval("SELECT user_id FROM opencode_message_parts WHERE id='prt_2'") == ALICE

    await db.execute(
        "SELECT opencode_apply_compaction('ses_a', $1::jsonb, '[]'::jsonb, ARRAY['msg_1'])",
        message("msg_s", "ses_a", summary=True, status="completed"),
    )
    assert await db.fetchval("SELECT compacted FROM opencode_messages WHERE id = 'msg_1'")
    assert await db.fetchval("SELECT compaction_count FROM opencode_compaction") == 1
    assert await db.fetchval('SELECT opencode_mark_interrupted(\'{"type": "interrupted"}\')') == 1

    # quota: 3 x 40 tokens fit under 100 only twice; settle counts, release does not
    granted = [
        await db.fetchval(
            "SELECT opencode_reserve_usage($1, $2, '2026-01-01', 40, 100, NULL)", f"rsv_{i}", ALICE
        )
        for i in range(3)
    ]
    assert granted == [True, True, False]
    await db.execute("SELECT opencode_finish_reservation('rsv_0', 7, 3, TRUE)")
    await db.execute("SELECT opencode_finish_reservation('rsv_0', 7, 3, TRUE)")
    await db.execute("SELECT opencode_finish_reservation('rsv_1', 0, 0, FALSE)")
    u = await db.fetchrow("SELECT * FROM opencode_usage")
    assert (u["input_tokens"], u["output_tokens"], u["requests"], u["reserved_tokens"]) == (
        7, 3, 1, 0,
    )  # fmt: skip

    # row-level security: as Bob (authenticated) Alice's rows are invisible and untouchable
    async with db.transaction():
        await db.execute("SET LOCAL ROLE authenticated")
        await db.execute("SELECT set_config('request.jwt.claim.sub', $1, true)", BOB)
        assert await db.fetchval("SELECT count(*) FROM opencode_sessions") == 1
        assert await db.fetchval("SELECT count(*) FROM opencode_messages") == 0
        assert await db.fetchval("SELECT count(*) FROM opencode_usage") == 0
        deleted = await db.execute("DELETE FROM opencode_sessions WHERE id = 'ses_a'")
        assert deleted == "DELETE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute("SELECT opencode_reserve_usage('x', $1, 'd', 1, NULL, NULL)", BOB)


def file_part(pid: str, mid: str, session_id: str, file_id: str) -> dict[str, object]:
    return {**part(pid, mid, session_id), "type": "file", "metadata": {"file_id": file_id}}


async def test_deleting_messages_deletes_the_files_only_they_name(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO opencode_sessions (id, user_id) VALUES ('ses_f', $1)", ALICE)
    await db.execute(
        "INSERT INTO opencode_message_files (session_id, id, user_id, mime, size, data) "
        "SELECT 'ses_f', f, $1, 'image/png', 1, 'AA==' FROM unnest($2::text[]) AS f",
        ALICE,
        ["fil_1", "fil_2", "fil_3", "fil_pending"],
    )
    messages = [  # (id, seconds, file ids, status)
        ("msg_1", 1, ["fil_1", "fil_2"], "completed"),
        ("msg_2", 2, ["fil_2"], "completed"),
        ("msg_3", 3, ["fil_3"], "completed"),
        ("msg_4", 4, ["fil_3"], "queued"),  # a regenerate's new message: carries fil_3
    ]
    for mid, second, files, status in messages:
        await db.execute(
            "SELECT opencode_append_message($1::jsonb, $2::jsonb)",
            message(
                mid, "ses_f", role="user", status=status, created_at=f"2026-01-01T00:00:0{second}Z"
            ),
            json.dumps([file_part(f"prt_{mid}_{f}", mid, "ses_f", f) for f in files]),
        )

    async def files() -> list[str]:
        rows = await db.fetch("SELECT id FROM opencode_message_files ORDER BY id")
        return [r["id"] for r in rows]

    assert await db.fetchval("SELECT opencode_delete_message('ses_f', 'msg_1')")
    assert await files() == ["fil_2", "fil_3", "fil_pending"]  # msg_2 still names fil_2
    assert await db.fetchval("SELECT opencode_commit_revert('ses_f', 'msg_2')") == 2
    assert await files() == ["fil_3", "fil_pending"]  # the queued msg_4 still names fil_3
    assert await db.fetchval("SELECT opencode_delete_message('ses_f', 'msg_4')")
    assert await files() == ["fil_pending"]  # named by no message yet: not for these to take
