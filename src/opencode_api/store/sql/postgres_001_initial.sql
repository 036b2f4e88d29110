-- opencode-api PostgreSQL schema, version 1.
CREATE TABLE sessions (
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
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_updated ON sessions (updated_at DESC, id DESC);
CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at DESC, id DESC);
CREATE INDEX sessions_busy ON sessions (status) WHERE status = 'busy';

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    created_at TIMESTAMPTZ NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    provider_id TEXT,
    model_id TEXT,
    usage JSONB,
    cost DOUBLE PRECISION NOT NULL DEFAULT 0,
    priced BOOLEAN NOT NULL DEFAULT TRUE,
    finish TEXT,
    error JSONB,
    status TEXT NOT NULL,
    parent_id TEXT,
    compacted BOOLEAN NOT NULL DEFAULT FALSE,
    summary BOOLEAN NOT NULL DEFAULT FALSE,
    step_count BIGINT NOT NULL DEFAULT 0
);
-- Pages are read in (created_at, id) order: with this index a page at any offset is an index scan.
CREATE INDEX messages_page ON messages (session_id, created_at, id);
CREATE INDEX messages_unfinished ON messages (status) WHERE status IN ('running', 'queued');

CREATE TABLE message_parts (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    type TEXT NOT NULL
        CHECK (type IN ('text', 'reasoning', 'tool_call', 'step_start', 'step_finish')),
    content TEXT,
    tool_call_id TEXT,
    tool_name TEXT,
    tool_args JSONB,
    tool_output TEXT,
    tool_status TEXT,
    metadata JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_parts_message ON message_parts (message_id, created_at, id);

CREATE TABLE session_model_usage (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
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

CREATE TABLE todos (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    todos JSONB NOT NULL DEFAULT '[]'
);

CREATE TABLE questions (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    questions JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    answers TEXT,
    user_id TEXT
);
CREATE INDEX questions_pending ON questions (status, created_at, id);

CREATE TABLE compaction (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'idle',
    compaction_count BIGINT NOT NULL DEFAULT 0,
    last_compacted_at TIMESTAMPTZ,
    last_error TEXT
);

CREATE TABLE daily_usage (
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    requests BIGINT NOT NULL DEFAULT 0,
    reserved_tokens BIGINT NOT NULL DEFAULT 0,
    reserved_requests BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);

-- One row per open reservation, so settling or releasing twice counts once.
CREATE TABLE usage_reservations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    requests BIGINT NOT NULL
);
