-- Branching and budgets (API.md, "Beyond the replaced service"). A revert hides messages by
-- flagging them (the flag is what lists, forks and the model's history filter on); the next
-- turn deletes the flagged ones for good. forked_from is {"session_id", "message_id"}.
ALTER TABLE sessions ADD COLUMN max_cost DOUBLE PRECISION;
ALTER TABLE sessions ADD COLUMN webhook_url TEXT;
ALTER TABLE sessions ADD COLUMN forked_from JSONB;
ALTER TABLE sessions ADD COLUMN revert_message_id TEXT;
ALTER TABLE messages ADD COLUMN reverted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE daily_usage ADD COLUMN cost DOUBLE PRECISION NOT NULL DEFAULT 0;
