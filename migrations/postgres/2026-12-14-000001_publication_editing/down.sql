ALTER TABLE subscribers DROP COLUMN notice_sent_at;
ALTER TABLE publication_items DROP COLUMN body_markdown;
