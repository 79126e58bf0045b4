-- Statements of a campaign co-signed by participants (docs/campaigns.md):
-- a draft until every co-signer confirmed, then published as the
-- campaign's own alert (`alert_id`).
CREATE TABLE campaign_statements (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    language TEXT NOT NULL,
    state TEXT NOT NULL,
    alert_id BIGINT REFERENCES alerts (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);

-- Each co-signer of a statement: the Offer sent to it and whether it
-- confirmed.
CREATE TABLE statement_signers (
    id BIGSERIAL PRIMARY KEY,
    statement_id BIGINT NOT NULL REFERENCES campaign_statements (id) ON DELETE CASCADE,
    actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    offer_ap_id TEXT UNIQUE,
    state TEXT NOT NULL,
    confirmed_at BIGINT,
    UNIQUE (statement_id, actor_id)
);

-- On a co-signer's instance: statements a campaign offered to a local
-- organisation, waiting for its editors to confirm.
CREATE TABLE statement_requests (
    id BIGSERIAL PRIMARY KEY,
    offer_ap_id TEXT NOT NULL UNIQUE,
    campaign_actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    content_html TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    answered_at BIGINT
);
