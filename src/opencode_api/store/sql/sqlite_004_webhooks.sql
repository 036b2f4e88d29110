-- Webhook deliveries (API.md, "Webhooks"): stored before they are sent, so a restart loses none.
-- locked_by/locked_until: a sender's lease on a delivery it is sending (store/_webhook_records.py).
CREATE TABLE webhook_deliveries (
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
    next_attempt_at TEXT,
    locked_by TEXT,
    locked_until TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_session ON webhook_deliveries (session_id, created_at);
