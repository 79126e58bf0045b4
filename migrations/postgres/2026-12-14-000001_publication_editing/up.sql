-- The Markdown an editor wrote for a Communiqué item, so the item can be
-- edited again (Digest items, taken from alerts, have none).
ALTER TABLE publication_items ADD COLUMN body_markdown TEXT;

-- When the last message about the subscription (confirmation link, or the
-- link to the preferences of a known address) was sent: at most one an hour
-- per address, whatever the sign-up form receives.
ALTER TABLE subscribers ADD COLUMN notice_sent_at BIGINT;
