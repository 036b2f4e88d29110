-- opencode-api SQLite schema, version 1. Timestamps are fixed-width ISO-8601 UTC text, so text
-- order is time order; JSON columns hold JSON text.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    title TEXT,
    provider_id TEXT,
    model_id TEXT,
    system TEXT,
    status TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'busy')),
    message_count INTEGER NOT NULL DEFAULT 0,
    total_cost REAL NOT NULL DEFAULT 0,
    total_input_tokens INTEGER NOT NULL DEFAULT 0,
    total_output_tokens INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX sessions_updated ON sessions (updated_at DESC, id DESC);
CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at DESC, id DESC);
CREATE INDEX sessions_busy ON sessions (status) WHERE status = 'busy';

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    created_at TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    provider_id TEXT,
    model_id TEXT,
    usage TEXT,
    cost REAL NOT NULL DEFAULT 0,
    priced INTEGER NOT NULL DEFAULT 1,
    finish TEXT,
    error TEXT,
    status TEXT NOT NULL,
    parent_id TEXT,
    compacted INTEGER NOT NULL DEFAULT 0,
    summary INTEGER NOT NULL DEFAULT 0,
    step_count INTEGER NOT NULL DEFAULT 0
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
    tool_args TEXT,
    tool_output TEXT,
    tool_status TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX message_parts_message ON message_parts (message_id, created_at, id);

CREATE TABLE session_model_usage (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    provider_id TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    cost REAL NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0,
    priced INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (session_id, provider_id, model_id)
);

CREATE TABLE todos (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    todos TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE questions (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    questions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    answers TEXT,
    user_id TEXT
);
CREATE INDEX questions_pending ON questions (status, created_at, id);

CREATE TABLE compaction (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'idle',
    compaction_count INTEGER NOT NULL DEFAULT 0,
    last_compacted_at TEXT,
    last_error TEXT
);

CREATE TABLE daily_usage (
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    reserved_tokens INTEGER NOT NULL DEFAULT 0,
    reserved_requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);

-- One row per open reservation, so settling or releasing twice counts once.
CREATE TABLE usage_reservations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    requests INTEGER NOT NULL
);
