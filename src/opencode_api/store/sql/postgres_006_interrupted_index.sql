-- Replies a dead process left unfinished are marked interrupted at the next start-up; webhooks
-- then send turn.failed for them, finding them by this (small, partial) index.
CREATE INDEX messages_interrupted ON messages (created_at) WHERE status = 'interrupted';
