-- Files of user messages (API.md, "Richer input and output"): a part of type 'file' names its
-- bytes, kept in message_files so that listing messages never reads them.
ALTER TABLE message_parts DROP CONSTRAINT IF EXISTS message_parts_type_check;
ALTER TABLE message_parts ADD CONSTRAINT message_parts_type_check
    CHECK (type IN ('text', 'reasoning', 'tool_call', 'step_start', 'step_finish', 'file'));

-- The bytes, base64 (as providers take them). A file belongs to its session: a regenerated
-- message refers to the same file, a fork gets copies.
CREATE TABLE message_files (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL,
    data TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, id)
);
