-- opencode-api on Supabase REST: run once in the SQL editor of your project (idempotent).
--
-- Tables: opencode_sessions, opencode_messages, opencode_message_parts, opencode_session_costs,
-- opencode_todos, opencode_questions, opencode_compaction, opencode_usage,
-- opencode_usage_reservations. Every row carries user_id, and row-level security lets a user
-- (a request made with their JWT) see and change only rows where auth.uid() = user_id. The
-- server's service key bypasses RLS. Multi-statement writes are Postgres functions called with
-- rpc(), so each is one transaction. Quota rows can be read by their user but changed only
-- through the usage functions, which only the service role may call.
--
-- Recommended instead where possible: DATABASE_URL=postgresql://... (the Supabase connection
-- string; with the transaction pooler on port 6543 add ?statement_cache_size=0).

CREATE TABLE IF NOT EXISTS opencode_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    title TEXT,
    provider_id TEXT,
    model_id TEXT,
    system TEXT,
    status TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'busy')),
    message_count BIGINT NOT NULL DEFAULT 0,
    total_cost DOUBLE PRECISION NOT NULL DEFAULT 0,
    total_input_tokens BIGINT NOT NULL DEFAULT 0,
    total_output_tokens BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS opencode_sessions_user_updated
    ON opencode_sessions (user_id, updated_at DESC, id DESC);
-- Branching and budgets (added later: ADD COLUMN IF NOT EXISTS upgrades an existing schema).
ALTER TABLE opencode_sessions ADD COLUMN IF NOT EXISTS max_cost DOUBLE PRECISION;
ALTER TABLE opencode_sessions ADD COLUMN IF NOT EXISTS webhook_url TEXT;
ALTER TABLE opencode_sessions ADD COLUMN IF NOT EXISTS forked_from JSONB;
ALTER TABLE opencode_sessions ADD COLUMN IF NOT EXISTS revert_message_id TEXT;

CREATE TABLE IF NOT EXISTS opencode_messages (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES opencode_sessions (id) ON DELETE CASCADE,
    user_id TEXT,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    content TEXT NOT NULL DEFAULT '',
    provider_id TEXT,
    model_id TEXT,
    usage JSONB,
    cost DOUBLE PRECISION NOT NULL DEFAULT 0,
    priced BOOLEAN NOT NULL DEFAULT TRUE,
    finish TEXT,
    error JSONB,
    status TEXT NOT NULL DEFAULT 'completed',
    parent_id TEXT,
    compacted BOOLEAN NOT NULL DEFAULT FALSE,
    summary BOOLEAN NOT NULL DEFAULT FALSE,
    step_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS opencode_messages_page
    ON opencode_messages (session_id, created_at, id);
CREATE INDEX IF NOT EXISTS opencode_messages_unfinished
    ON opencode_messages (status) WHERE status IN ('running', 'queued');
ALTER TABLE opencode_messages ADD COLUMN IF NOT EXISTS reverted BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE IF NOT EXISTS opencode_message_parts (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES opencode_messages (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    user_id TEXT,
    type TEXT NOT NULL
        CHECK (type IN ('text', 'reasoning', 'tool_call', 'step_start', 'step_finish')),
    content TEXT,
    tool_call_id TEXT,
    tool_name TEXT,
    tool_args JSONB,
    tool_output TEXT,
    tool_status TEXT,
    metadata JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS opencode_message_parts_message
    ON opencode_message_parts (message_id, created_at, id);

CREATE TABLE IF NOT EXISTS opencode_session_costs (
    session_id TEXT NOT NULL REFERENCES opencode_sessions (id) ON DELETE CASCADE,
    user_id TEXT,
    provider_id TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    cost DOUBLE PRECISION NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    messages BIGINT NOT NULL DEFAULT 0,
    priced BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (session_id, provider_id, model_id)
);

CREATE TABLE IF NOT EXISTS opencode_todos (
    session_id TEXT PRIMARY KEY REFERENCES opencode_sessions (id) ON DELETE CASCADE,
    user_id TEXT,
    todos JSONB NOT NULL DEFAULT '[]'
);

CREATE TABLE IF NOT EXISTS opencode_questions (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES opencode_sessions (id) ON DELETE CASCADE,
    user_id TEXT,
    message_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    questions JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    status TEXT NOT NULL DEFAULT 'pending',
    answers JSONB
);
CREATE INDEX IF NOT EXISTS opencode_questions_pending
    ON opencode_questions (status, created_at, id);

CREATE TABLE IF NOT EXISTS opencode_compaction (
    session_id TEXT PRIMARY KEY REFERENCES opencode_sessions (id) ON DELETE CASCADE,
    user_id TEXT,
    status TEXT NOT NULL DEFAULT 'idle',
    compaction_count BIGINT NOT NULL DEFAULT 0,
    last_compacted_at TIMESTAMPTZ,
    last_error TEXT
);

CREATE TABLE IF NOT EXISTS opencode_usage (
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    requests BIGINT NOT NULL DEFAULT 0,
    reserved_tokens BIGINT NOT NULL DEFAULT 0,
    reserved_requests BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);
ALTER TABLE opencode_usage ADD COLUMN IF NOT EXISTS cost DOUBLE PRECISION NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS opencode_usage_reservations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    requests BIGINT NOT NULL
);

-- Row-level security: a user's JWT reaches only that user's rows.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['opencode_sessions', 'opencode_messages', 'opencode_message_parts',
                             'opencode_session_costs', 'opencode_todos', 'opencode_questions',
                             'opencode_compaction']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_owner', t);
        EXECUTE format(
            'CREATE POLICY %I ON %I FOR ALL TO authenticated '
            'USING ((SELECT auth.uid())::text = user_id) '
            'WITH CHECK ((SELECT auth.uid())::text = user_id)', t || '_owner', t);
    END LOOP;
    ALTER TABLE opencode_usage ENABLE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS opencode_usage_read_own ON opencode_usage;
    CREATE POLICY opencode_usage_read_own ON opencode_usage FOR SELECT TO authenticated
        USING ((SELECT auth.uid())::text = user_id);
    ALTER TABLE opencode_usage_reservations ENABLE ROW LEVEL SECURITY;
END
$$;

-- Insert a message with its parts; the session's message_count and updated_at follow.
CREATE OR REPLACE FUNCTION opencode_append_message(p_message JSONB, p_parts JSONB)
RETURNS VOID LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    v_user TEXT;
BEGIN
    SELECT user_id INTO v_user FROM opencode_sessions WHERE id = p_message->>'session_id';
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = 'session does not exist';
    END IF;
    INSERT INTO opencode_messages
        SELECT * FROM jsonb_populate_record(NULL::opencode_messages,
                                            p_message || jsonb_build_object('user_id', v_user, 'reverted', false));
    INSERT INTO opencode_message_parts
        SELECT * FROM jsonb_populate_recordset(NULL::opencode_message_parts,
            (SELECT COALESCE(jsonb_agg(x || jsonb_build_object('user_id', v_user)), '[]')
             FROM jsonb_array_elements(p_parts) AS x));
    UPDATE opencode_sessions SET message_count = message_count + 1, updated_at = now()
        WHERE id = p_message->>'session_id';
END
$$;

-- Upsert parts of one session (a part as it streams, or a step's parts).
CREATE OR REPLACE FUNCTION opencode_upsert_parts(p_parts JSONB)
RETURNS VOID LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    p_user TEXT := (SELECT user_id FROM opencode_sessions
                    WHERE id = p_parts->0->>'session_id');
BEGIN
    INSERT INTO opencode_message_parts AS p
        SELECT * FROM jsonb_populate_recordset(NULL::opencode_message_parts,
            (SELECT COALESCE(jsonb_agg(x || jsonb_build_object('user_id', p_user)), '[]')
             FROM jsonb_array_elements(p_parts) AS x))
    ON CONFLICT (id) DO UPDATE SET type = excluded.type, content = excluded.content,
        tool_call_id = excluded.tool_call_id, tool_name = excluded.tool_name,
        tool_args = excluded.tool_args, tool_output = excluded.tool_output,
        tool_status = excluded.tool_status, metadata = excluded.metadata;
END
$$;

-- Delete one message of a session (its parts go by ON DELETE CASCADE); true when it existed.
-- First the files its parts name that no other message of the session names (a regenerated
-- message names the same files as the one it replaced; a fork has its own copies).
CREATE OR REPLACE FUNCTION opencode_delete_message(p_session_id TEXT, p_message_id TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    DELETE FROM opencode_message_files f
        WHERE f.session_id = p_session_id
            AND f.id IN (SELECT p.metadata->>'file_id' FROM opencode_message_parts p
                JOIN opencode_messages m ON m.id = p.message_id
                WHERE m.session_id = p_session_id AND m.id = p_message_id AND p.type = 'file')
            AND NOT EXISTS (SELECT 1 FROM opencode_message_parts p
                JOIN opencode_messages m ON m.id = p.message_id
                WHERE m.session_id = p_session_id AND m.id <> p_message_id AND p.type = 'file'
                    AND p.metadata->>'file_id' = f.id);
    DELETE FROM opencode_messages WHERE id = p_message_id AND session_id = p_session_id;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    UPDATE opencode_sessions SET message_count = message_count - 1, updated_at = now()
        WHERE id = p_session_id;
    RETURN TRUE;
END
$$;

-- A fork (API.md "Branching and editing"): the new session (p_fork, a sessions row) with copies
-- of the source's visible messages up to p_upto (all when NULL), their parts, todos and
-- compaction record. A copy's id is its original's first 30 characters followed by p_tag.
-- Returns the number of messages copied, or -1 when the source or p_upto does not exist.
CREATE OR REPLACE FUNCTION opencode_fork_session(
    p_source TEXT, p_fork JSONB, p_upto TEXT, p_tag TEXT, p_user TEXT)
RETURNS BIGINT LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    v_fork TEXT := p_fork->>'id';
    v_at TIMESTAMPTZ;
    v_count BIGINT;
BEGIN
    PERFORM 1 FROM opencode_sessions WHERE id = p_source AND (p_user IS NULL OR user_id = p_user);
    IF NOT FOUND THEN
        RETURN -1;
    END IF;
    IF p_upto IS NOT NULL THEN
        SELECT created_at INTO v_at FROM opencode_messages
            WHERE id = p_upto AND session_id = p_source AND NOT reverted;
        IF NOT FOUND THEN
            RETURN -1;
        END IF;
    END IF;
    INSERT INTO opencode_sessions SELECT * FROM jsonb_populate_record(NULL::opencode_sessions, p_fork);
    INSERT INTO opencode_messages (id, session_id, user_id, role, created_at, content, provider_id,
            model_id, usage, cost, priced, finish, error, status, parent_id, compacted, summary,
            step_count, reverted)
        SELECT substr(id, 1, 30) || p_tag, v_fork, p_fork->>'user_id', role, created_at, content,
            provider_id, model_id, usage, cost, priced, finish, error,
            CASE WHEN status IN ('queued', 'running') THEN 'interrupted' ELSE status END,
            CASE WHEN parent_id IS NULL THEN NULL ELSE substr(parent_id, 1, 30) || p_tag END,
            compacted, summary, step_count, FALSE
        FROM opencode_messages
        WHERE session_id = p_source AND NOT reverted
            AND (p_upto IS NULL OR created_at < v_at OR (created_at = v_at AND id <= p_upto));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO opencode_message_parts (id, message_id, session_id, user_id, type, content,
            tool_call_id, tool_name, tool_args, tool_output, tool_status, metadata, created_at)
        SELECT substr(p.id, 1, 30) || p_tag, substr(p.message_id, 1, 30) || p_tag, v_fork,
            p_fork->>'user_id', p.type, p.content, p.tool_call_id, p.tool_name, p.tool_args,
            p.tool_output, p.tool_status, p.metadata, p.created_at
        FROM opencode_message_parts p JOIN opencode_messages m ON m.id = p.message_id
        WHERE m.session_id = p_source AND NOT m.reverted
            AND (p_upto IS NULL OR m.created_at < v_at OR (m.created_at = v_at AND m.id <= p_upto));
    INSERT INTO opencode_todos (session_id, user_id, todos)
        SELECT v_fork, p_fork->>'user_id', todos FROM opencode_todos WHERE session_id = p_source;
    INSERT INTO opencode_compaction (session_id, user_id, status, compaction_count,
            last_compacted_at, last_error)
        SELECT v_fork, p_fork->>'user_id', 'idle', compaction_count, last_compacted_at, NULL
        FROM opencode_compaction WHERE session_id = p_source;
    UPDATE opencode_sessions SET message_count = v_count WHERE id = v_fork;
    RETURN v_count;
END
$$;

-- A revert: flag p_message and every finished message after it hidden (NULL: unflag all), and
-- record the revert point. FALSE when p_message is not a message of the session.
CREATE OR REPLACE FUNCTION opencode_revert_session(p_session_id TEXT, p_message TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    v_at TIMESTAMPTZ;
BEGIN
    IF p_message IS NULL THEN
        UPDATE opencode_messages SET reverted = FALSE WHERE session_id = p_session_id AND reverted;
    ELSE
        SELECT created_at INTO v_at FROM opencode_messages
            WHERE id = p_message AND session_id = p_session_id;
        IF NOT FOUND THEN
            RETURN FALSE;
        END IF;
        UPDATE opencode_messages
            SET reverted = (created_at > v_at OR (created_at = v_at AND id >= p_message))
            WHERE session_id = p_session_id AND status NOT IN ('queued', 'running');
    END IF;
    UPDATE opencode_sessions SET revert_message_id = p_message, updated_at = now()
        WHERE id = p_session_id;
    RETURN FOUND;
END
$$;

-- The next turn after a revert (or a regenerate from p_from): delete the hidden messages, and
-- first the files their parts name that no other message of the session names.
CREATE OR REPLACE FUNCTION opencode_commit_revert(p_session_id TEXT, p_from TEXT)
RETURNS BIGINT LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    v_at TIMESTAMPTZ;
    v_count BIGINT;
BEGIN
    IF p_from IS NOT NULL THEN
        SELECT created_at INTO v_at FROM opencode_messages
            WHERE id = p_from AND session_id = p_session_id;
        IF FOUND THEN
            UPDATE opencode_messages SET reverted = TRUE
                WHERE session_id = p_session_id AND status NOT IN ('queued', 'running')
                    AND (created_at > v_at OR (created_at = v_at AND id >= p_from));
        END IF;
    END IF;
    DELETE FROM opencode_message_files f
        WHERE f.session_id = p_session_id
            AND f.id IN (SELECT p.metadata->>'file_id' FROM opencode_message_parts p
                JOIN opencode_messages m ON m.id = p.message_id
                WHERE m.session_id = p_session_id AND m.reverted AND p.type = 'file')
            AND NOT EXISTS (SELECT 1 FROM opencode_message_parts p
                JOIN opencode_messages m ON m.id = p.message_id
                WHERE m.session_id = p_session_id AND NOT m.reverted AND p.type = 'file'
                    AND p.metadata->>'file_id' = f.id);
    DELETE FROM opencode_messages WHERE session_id = p_session_id AND reverted;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    UPDATE opencode_sessions SET revert_message_id = NULL,
        message_count = message_count - v_count, updated_at = now()
        WHERE id = p_session_id;
    RETURN v_count;
END
$$;

-- A user's spending of the day grows by one step's cost (DAILY_COST_LIMIT); the new total.
CREATE OR REPLACE FUNCTION opencode_add_daily_cost(p_user_id TEXT, p_day TEXT, p_cost DOUBLE PRECISION)
RETURNS DOUBLE PRECISION LANGUAGE sql SECURITY INVOKER AS $$
    INSERT INTO opencode_usage (user_id, day, cost) VALUES (p_user_id, p_day, p_cost)
    ON CONFLICT (user_id, day) DO UPDATE SET cost = opencode_usage.cost + excluded.cost
    RETURNING cost
$$;

-- One finished agent-loop step, all or nothing (see StepRecord).
CREATE OR REPLACE FUNCTION opencode_save_step(
    p_message JSONB, p_parts JSONB, p_usage JSONB, p_cost DOUBLE PRECISION)
RETURNS VOID LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    v_session TEXT := p_message->>'session_id';
    v_user TEXT;
    v_steps BIGINT;
    v_new BOOLEAN;
BEGIN
    SELECT user_id INTO v_user FROM opencode_sessions WHERE id = v_session;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = 'session does not exist';
    END IF;
    SELECT step_count INTO v_steps FROM opencode_messages WHERE id = p_message->>'id';
    v_new := NOT FOUND;
    INSERT INTO opencode_messages AS m
        SELECT * FROM jsonb_populate_record(NULL::opencode_messages,
            p_message || jsonb_build_object('user_id', v_user, 'step_count', 1, 'reverted', false))
    ON CONFLICT (id) DO UPDATE SET content = excluded.content,
        provider_id = excluded.provider_id, model_id = excluded.model_id,
        usage = excluded.usage, cost = excluded.cost, priced = excluded.priced,
        finish = excluded.finish, error = excluded.error, status = excluded.status,
        step_count = m.step_count + 1;
    PERFORM opencode_upsert_parts(p_parts);
    UPDATE opencode_sessions SET
        total_cost = total_cost + p_cost,
        total_input_tokens = total_input_tokens + (p_usage->>'input_tokens')::BIGINT,
        total_output_tokens = total_output_tokens + (p_usage->>'output_tokens')::BIGINT,
        message_count = message_count + CASE WHEN v_new THEN 1 ELSE 0 END,
        updated_at = now()
        WHERE id = v_session;
    INSERT INTO opencode_session_costs AS c (session_id, user_id, provider_id, model_id, cost,
        input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_write_tokens,
        messages, priced)
    VALUES (v_session, v_user, COALESCE(p_message->>'provider_id', ''),
        COALESCE(p_message->>'model_id', ''), p_cost,
        (p_usage->>'input_tokens')::BIGINT, (p_usage->>'output_tokens')::BIGINT,
        (p_usage->>'reasoning_tokens')::BIGINT, (p_usage->>'cache_read_tokens')::BIGINT,
        (p_usage->>'cache_write_tokens')::BIGINT,
        CASE WHEN v_new OR v_steps = 0 THEN 1 ELSE 0 END,
        COALESCE((p_message->>'priced')::BOOLEAN, TRUE))
    ON CONFLICT (session_id, provider_id, model_id) DO UPDATE SET
        cost = c.cost + excluded.cost,
        input_tokens = c.input_tokens + excluded.input_tokens,
        output_tokens = c.output_tokens + excluded.output_tokens,
        reasoning_tokens = c.reasoning_tokens + excluded.reasoning_tokens,
        cache_read_tokens = c.cache_read_tokens + excluded.cache_read_tokens,
        cache_write_tokens = c.cache_write_tokens + excluded.cache_write_tokens,
        messages = c.messages + excluded.messages,
        priced = c.priced AND excluded.priced;
END
$$;

-- Insert the summary, flag the compacted messages, bump the compaction state.
CREATE OR REPLACE FUNCTION opencode_apply_compaction(
    p_session_id TEXT, p_summary JSONB, p_parts JSONB, p_compacted_ids TEXT[])
RETURNS VOID LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    PERFORM opencode_append_message(p_summary, p_parts);
    UPDATE opencode_messages SET compacted = TRUE
        WHERE session_id = p_session_id AND id = ANY (p_compacted_ids);
    INSERT INTO opencode_compaction AS c (session_id, user_id, status, compaction_count,
        last_compacted_at, last_error)
    VALUES (p_session_id, (SELECT user_id FROM opencode_sessions WHERE id = p_session_id),
        'idle', 1, now(), NULL)
    ON CONFLICT (session_id) DO UPDATE SET status = 'idle',
        compaction_count = c.compaction_count + 1, last_compacted_at = now(), last_error = NULL;
END
$$;

-- Hold p_tokens and one request if used + reserved stays within the limits (NULL: no limit).
CREATE OR REPLACE FUNCTION opencode_reserve_usage(
    p_id TEXT, p_user_id TEXT, p_day TEXT, p_tokens BIGINT, p_token_limit BIGINT,
    p_request_limit BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO opencode_usage (user_id, day) VALUES (p_user_id, p_day)
        ON CONFLICT DO NOTHING;
    -- The row lock taken by this UPDATE makes check-and-add atomic across concurrent calls.
    UPDATE opencode_usage SET reserved_tokens = reserved_tokens + p_tokens,
        reserved_requests = reserved_requests + 1
        WHERE user_id = p_user_id AND day = p_day
          AND (p_token_limit IS NULL
               OR input_tokens + output_tokens + reserved_tokens + p_tokens <= p_token_limit)
          AND (p_request_limit IS NULL OR requests + reserved_requests + 1 <= p_request_limit);
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    INSERT INTO opencode_usage_reservations (id, user_id, day, tokens, requests)
        VALUES (p_id, p_user_id, p_day, p_tokens, 1);
    RETURN TRUE;
END
$$;

-- Settle (p_count: add the real tokens and the request) or release a reservation, once.
CREATE OR REPLACE FUNCTION opencode_finish_reservation(
    p_id TEXT, p_input_tokens BIGINT, p_output_tokens BIGINT, p_count BOOLEAN)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    r opencode_usage_reservations;
BEGIN
    DELETE FROM opencode_usage_reservations WHERE id = p_id RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE opencode_usage SET reserved_tokens = reserved_tokens - r.tokens,
        reserved_requests = reserved_requests - r.requests,
        input_tokens = input_tokens + CASE WHEN p_count THEN p_input_tokens ELSE 0 END,
        output_tokens = output_tokens + CASE WHEN p_count THEN p_output_tokens ELSE 0 END,
        requests = requests + CASE WHEN p_count THEN r.requests ELSE 0 END
        WHERE user_id = r.user_id AND day = r.day;
END
$$;

-- Turns left running by a dead process: messages -> interrupted, sessions -> idle.
CREATE OR REPLACE FUNCTION opencode_mark_interrupted(p_error JSONB)
RETURNS BIGINT LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    v_count BIGINT;
BEGIN
    UPDATE opencode_messages SET status = 'interrupted', error = p_error
        WHERE status IN ('running', 'queued');
    GET DIAGNOSTICS v_count = ROW_COUNT;
    UPDATE opencode_sessions SET status = 'idle' WHERE status = 'busy';
    RETURN v_count;
END
$$;

REVOKE EXECUTE ON FUNCTION opencode_reserve_usage(TEXT, TEXT, TEXT, BIGINT, BIGINT, BIGINT),
    opencode_finish_reservation(TEXT, BIGINT, BIGINT, BOOLEAN),
    opencode_mark_interrupted(JSONB) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION opencode_reserve_usage(TEXT, TEXT, TEXT, BIGINT, BIGINT, BIGINT),
    opencode_finish_reservation(TEXT, BIGINT, BIGINT, BOOLEAN),
    opencode_mark_interrupted(JSONB) TO service_role;

-- Webhook deliveries (API.md, "Webhooks"): stored before they are sent, so a restart loses none.
-- A user may read their own deliveries; only the server (service role) writes and claims them.
CREATE TABLE IF NOT EXISTS opencode_webhook_deliveries (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error TEXT,
    next_attempt_at TIMESTAMPTZ,
    locked_by TEXT,
    locked_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS opencode_webhook_deliveries_due
    ON opencode_webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS opencode_webhook_deliveries_session
    ON opencode_webhook_deliveries (session_id, created_at);
ALTER TABLE opencode_webhook_deliveries ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS opencode_webhook_deliveries_read_own ON opencode_webhook_deliveries;
CREATE POLICY opencode_webhook_deliveries_read_own ON opencode_webhook_deliveries
    FOR SELECT TO authenticated USING ((SELECT auth.uid())::text = user_id);

-- Lease up to p_limit due deliveries to p_owner until p_until; SKIP LOCKED: concurrent claims
-- by other processes take other rows instead of waiting.
CREATE OR REPLACE FUNCTION opencode_claim_webhook_deliveries(
    p_owner TEXT, p_now TIMESTAMPTZ, p_until TIMESTAMPTZ, p_limit INTEGER)
RETURNS SETOF opencode_webhook_deliveries LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    RETURN QUERY
    UPDATE opencode_webhook_deliveries SET locked_by = p_owner, locked_until = p_until
        WHERE id IN (SELECT id FROM opencode_webhook_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= p_now
                       AND (locked_until IS NULL OR locked_until <= p_now)
                     ORDER BY next_attempt_at, id LIMIT p_limit
                     FOR UPDATE SKIP LOCKED)
        RETURNING *;
END
$$;

REVOKE EXECUTE ON FUNCTION opencode_claim_webhook_deliveries(TEXT, TIMESTAMPTZ, TIMESTAMPTZ,
    INTEGER) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION opencode_claim_webhook_deliveries(TEXT, TIMESTAMPTZ, TIMESTAMPTZ,
    INTEGER) TO service_role;

-- Add deliveries; one already stored (a retried write whose commit was lost) is left as it is.
CREATE OR REPLACE FUNCTION opencode_add_webhook_deliveries(p_rows JSONB)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO opencode_webhook_deliveries
        SELECT * FROM jsonb_populate_recordset(NULL::opencode_webhook_deliveries, p_rows)
        ON CONFLICT (id) DO NOTHING;
END
$$;

REVOKE EXECUTE ON FUNCTION opencode_add_webhook_deliveries(JSONB)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION opencode_add_webhook_deliveries(JSONB) TO service_role;

-- Files of user messages (API.md, "Richer input and output"): a part of type 'file' names its
-- bytes, kept in opencode_message_files so that listing messages never reads them (base64, as
-- providers take them). A file belongs to its session: a regenerated message refers to the same
-- file, a fork gets copies.
ALTER TABLE opencode_message_parts DROP CONSTRAINT IF EXISTS opencode_message_parts_type_check;
ALTER TABLE opencode_message_parts ADD CONSTRAINT opencode_message_parts_type_check
    CHECK (type IN ('text', 'reasoning', 'tool_call', 'step_start', 'step_finish', 'file'));

CREATE TABLE IF NOT EXISTS opencode_message_files (
    session_id TEXT NOT NULL REFERENCES opencode_sessions (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    user_id TEXT,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL,
    data TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, id)
);
ALTER TABLE opencode_message_files ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS opencode_message_files_owner ON opencode_message_files;
CREATE POLICY opencode_message_files_owner ON opencode_message_files FOR ALL TO authenticated
    USING ((SELECT auth.uid())::text = user_id)
    WITH CHECK ((SELECT auth.uid())::text = user_id);

-- Replies a dead process left unfinished (marked interrupted at the next start-up): webhooks
-- send turn.failed for them, found by this partial index.
CREATE INDEX IF NOT EXISTS opencode_messages_interrupted
    ON opencode_messages (created_at) WHERE status = 'interrupted';
