-- Files of user messages (API.md, "Richer input and output"): a part of type 'file' names its
-- bytes, kept in message_files so that listing messages never reads them.
--
-- SQLite cannot ALTER a CHECK constraint: message_parts is rebuilt the documented way
-- (https://www.sqlite.org/lang_altertable.html#otheralter): create the new table, copy, drop the
-- old one, rename, recreate its index. No table, view or trigger refers to message_parts, so the
-- foreign-key and schema checks of that recipe have nothing to repair.
CREATE TABLE message_parts_new (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    type TEXT NOT NULL
        CHECK (type IN ('text', 'reasoning', 'tool_call', 'step_start', 'step_finish', 'file')),
    content TEXT,
    tool_call_id TEXT,
    tool_name TEXT,
    tool_args TEXT,
    tool_output TEXT,
    tool_status TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
INSERT INTO message_parts_new (id, message_id, session_id, type, content, tool_call_id,
    tool_name, tool_args, tool_output, tool_status, metadata, created_at)
    SELECT id, message_id, session_id, type, content, tool_call_id, tool_name, tool_args,
        tool_output, tool_status, metadata, created_at FROM message_parts;
DROP TABLE message_parts;
ALTER TABLE message_parts_new RENAME TO message_parts;
CREATE INDEX message_parts_message ON message_parts (message_id, created_at, id);

-- The bytes, base64 (as providers take them). A file belongs to its session: a regenerated
-- message refers to the same file, a fork gets copies.
CREATE TABLE message_files (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (session_id, id)
);
