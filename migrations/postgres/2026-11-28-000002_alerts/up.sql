-- Alerts: one row per language version. Versions of one alert share
-- `group_id` (the row id of the original); a translation has
-- `translation_of` set to the original's row id.
CREATE TABLE alerts (
    id BIGSERIAL PRIMARY KEY,
    ap_id TEXT NOT NULL UNIQUE,
    actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    local BOOLEAN NOT NULL,
    translation_of BIGINT REFERENCES alerts (id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    content_html TEXT NOT NULL,
    source_markdown TEXT,
    summary TEXT,
    sensitive BOOLEAN NOT NULL,
    countries TEXT NOT NULL,
    region TEXT,
    categories TEXT NOT NULL,
    urgency TEXT NOT NULL,
    incident_date TEXT,
    case_ap_id TEXT,
    url TEXT,
    status TEXT NOT NULL,
    pinned BOOLEAN NOT NULL,
    token_id BIGINT,
    published_at BIGINT,
    updated_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX alerts_actor_published ON alerts (actor_id, published_at);
CREATE INDEX alerts_published ON alerts (status, published_at);

-- Links and uploaded files shown with an alert.
CREATE TABLE alert_attachments (
    id BIGSERIAL PRIMARY KEY,
    alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    media_type TEXT,
    description TEXT,
    position INTEGER NOT NULL
);
CREATE INDEX alert_attachments_alert ON alert_attachments (alert_id);

-- Deletes that arrived before the object they delete.
CREATE TABLE tombstones (
    ap_id TEXT PRIMARY KEY NOT NULL,
    deleted_at BIGINT NOT NULL
);
