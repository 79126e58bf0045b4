-- Joint campaigns (docs/campaigns.md): each is a local `Group` actor run
-- by several member organisations, with its aims and target.
CREATE TABLE campaigns (
    id BIGSERIAL PRIMARY KEY,
    actor_id BIGINT NOT NULL UNIQUE REFERENCES actors (id) ON DELETE CASCADE,
    aims TEXT NOT NULL,
    country TEXT,
    theme TEXT,
    created_at BIGINT NOT NULL,
    closed_at BIGINT
);

-- Member organisations (local or remote actors) invited to run a campaign:
-- 'invited' until their Follow of the campaign arrives, then 'joined';
-- 'left' after an Undo of that Follow or removal by staff.
CREATE TABLE campaign_participants (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    invited_at BIGINT NOT NULL,
    joined_at BIGINT,
    UNIQUE (campaign_id, actor_id)
);
CREATE INDEX campaign_participants_actor ON campaign_participants (actor_id);

-- Campaigns a local alert names (its original's id; translations share
-- them): sent in `audience`, `cc` and a Mention tag, and delivered to
-- the campaign's inbox.
CREATE TABLE alert_campaigns (
    alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    campaign_ap_id TEXT NOT NULL,
    campaign_inbox TEXT NOT NULL,
    PRIMARY KEY (alert_id, campaign_ap_id)
);
