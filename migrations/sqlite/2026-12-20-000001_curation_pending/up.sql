-- Incoming alerts whose curation (feeds' boosts, the review queue,
-- campaigns) has not finished. A row is written in the transaction that
-- stores the alert, only when this instance has feeds or campaigns to
-- curate for; it goes once the alert is curated. Rows left by a process
-- that died are curated again when the next one starts.
CREATE TABLE curation_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    -- The alert was already here: an edit.
    edit BOOLEAN NOT NULL,
    -- For an edit, the activity to forward to the feeds' followers.
    raw_activity TEXT,
    -- The campaigns the object names, as a JSON array of ids.
    named TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
