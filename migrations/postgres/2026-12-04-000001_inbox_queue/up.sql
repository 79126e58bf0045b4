-- Accepted incoming activities waiting for (or retrying) processing: a row
-- is committed before the inbox answers 202, so a crash loses nothing.
CREATE TABLE inbox_queue (
    id BIGSERIAL PRIMARY KEY,
    ap_id TEXT NOT NULL UNIQUE,
    signer TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    failed_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX inbox_queue_due ON inbox_queue (failed_at, next_attempt_at);
