-- Creates and Updates of alerts are applied many to a transaction by the
-- inbox's batch lane; every other activity one at a time.
ALTER TABLE inbox_queue ADD COLUMN batch BOOLEAN NOT NULL DEFAULT 0;
CREATE INDEX inbox_queue_lane ON inbox_queue (batch, id);
