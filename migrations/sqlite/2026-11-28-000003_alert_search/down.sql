DROP TRIGGER alerts_fts_update;
DROP TRIGGER alerts_fts_delete;
DROP TRIGGER alerts_fts_insert;
DROP TABLE alerts_fts;
ALTER TABLE alerts DROP COLUMN search_text;
