-- Member directory: remote organisations this instance follows as members.
CREATE TABLE members (
    actor_id BIGINT PRIMARY KEY NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    region TEXT,
    countries TEXT NOT NULL,
    added_at BIGINT NOT NULL
);

-- Curated feeds: a local Service actor each, with its filter rules.
CREATE TABLE feeds (
    actor_id BIGINT PRIMARY KEY NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    mode TEXT NOT NULL,
    regions TEXT NOT NULL,
    countries TEXT NOT NULL,
    categories TEXT NOT NULL,
    languages TEXT NOT NULL,
    urgencies TEXT NOT NULL
);

-- Editorial review of incoming alerts, one item per alert.
CREATE TABLE review_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id BIGINT NOT NULL UNIQUE REFERENCES alerts (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    matched_feeds TEXT NOT NULL,
    approved_feeds TEXT NOT NULL,
    reason TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    curated_alert_id BIGINT REFERENCES alerts (id) ON DELETE SET NULL,
    edited_after_approval BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX review_items_state ON review_items (state, created_at);

-- Boosts: each object at most once per feed.
CREATE TABLE announces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    feed_actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    ap_id TEXT NOT NULL UNIQUE,
    undone BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (feed_actor_id, alert_id)
);
CREATE INDEX announces_alert ON announces (alert_id);

-- A curated alert quotes the member original it was made from (FEP-044f).
ALTER TABLE alerts ADD COLUMN quote_ap_id TEXT;
