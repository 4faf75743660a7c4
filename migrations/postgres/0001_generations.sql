-- The generation ledger: the full record as JSON, plus the columns worth querying.
CREATE TABLE IF NOT EXISTS generations (
    id           TEXT PRIMARY KEY NOT NULL,
    created_at   BIGINT NOT NULL,
    model        TEXT NOT NULL,
    api_key_hash TEXT,
    api_type     TEXT NOT NULL,
    total_cost   BIGINT NOT NULL,
    record       JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_by_key ON generations (api_key_hash, created_at);
CREATE INDEX IF NOT EXISTS generations_by_time ON generations (created_at);
