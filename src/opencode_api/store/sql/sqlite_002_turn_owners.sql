-- Turns belong to the process that runs them: start-up recovery marks only the turns of owners
-- that are gone (no live lease), never those of another process serving the same database.
ALTER TABLE messages ADD COLUMN owner TEXT;
CREATE TABLE turn_owners (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat_at TEXT NOT NULL
);
