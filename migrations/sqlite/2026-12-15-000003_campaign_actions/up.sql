-- Calls to action of a campaign: sent to its followers as an `Event`
-- when a date is set, else as a `Note`.
CREATE TABLE campaign_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    content_html TEXT NOT NULL,
    starts_at BIGINT,
    ends_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX campaign_actions_campaign ON campaign_actions (campaign_id, id);
