DROP INDEX alerts_search;
ALTER TABLE alerts DROP COLUMN search_vector;
ALTER TABLE alerts DROP COLUMN search_text;
