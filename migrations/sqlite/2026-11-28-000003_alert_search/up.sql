-- Full-text search over alerts: plain text kept beside the HTML, indexed by
-- an FTS5 table that triggers keep in step.
ALTER TABLE alerts ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
CREATE VIRTUAL TABLE alerts_fts USING fts5(
    title, search_text,
    content = 'alerts', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER alerts_fts_insert AFTER INSERT ON alerts BEGIN
    INSERT INTO alerts_fts (rowid, title, search_text) VALUES (new.id, new.title, new.search_text);
END;
CREATE TRIGGER alerts_fts_delete AFTER DELETE ON alerts BEGIN
    INSERT INTO alerts_fts (alerts_fts, rowid, title, search_text) VALUES ('delete', old.id, old.title, old.search_text);
END;
CREATE TRIGGER alerts_fts_update AFTER UPDATE OF title, search_text ON alerts BEGIN
    INSERT INTO alerts_fts (alerts_fts, rowid, title, search_text) VALUES ('delete', old.id, old.title, old.search_text);
    INSERT INTO alerts_fts (rowid, title, search_text) VALUES (new.id, new.title, new.search_text);
END;
