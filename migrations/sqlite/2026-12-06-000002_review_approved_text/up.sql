-- What the member's alert said when an editor approved it, for the
-- "edited after approval" diff.
ALTER TABLE review_items ADD COLUMN approved_text TEXT;
