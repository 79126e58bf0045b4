ALTER TABLE review_items DROP COLUMN approved_text;
