-- Managed keys and every key's spend, shared by the instances of a deployment. Hashes and
-- masked labels only, never secrets. Amounts are picodollars; times unix milliseconds.
-- `changed_at` (the server's clock) moves on every change, spend included, so instances poll
-- `WHERE changed_at >= …`; a deleted key stays as a row with `deleted` set, so the deletion
-- reaches every instance the same way.
CREATE TABLE IF NOT EXISTS api_keys (
    hash          TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    label         TEXT NOT NULL,
    limit_pico    BIGINT,
    limit_reset   TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    managed       BOOLEAN NOT NULL,
    limits        JSONB,
    deleted       BOOLEAN NOT NULL DEFAULT false,
    usage_total   BIGINT NOT NULL DEFAULT 0,
    usage_daily   BIGINT NOT NULL DEFAULT 0,
    usage_weekly  BIGINT NOT NULL DEFAULT 0,
    usage_monthly BIGINT NOT NULL DEFAULT 0,
    day_start     BIGINT NOT NULL DEFAULT 0,
    week_start    BIGINT NOT NULL DEFAULT 0,
    month_start   BIGINT NOT NULL DEFAULT 0,
    changed_at    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_by_change ON api_keys (changed_at);
-- Spend batches already added, so a batch retried after a lost answer is not added twice.
CREATE TABLE IF NOT EXISTS api_key_spend_batches (
    id         TEXT PRIMARY KEY NOT NULL,
    applied_at BIGINT NOT NULL
);
