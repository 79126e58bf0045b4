CREATE TRIGGER alerts_fts_insert AFTER INSERT ON alerts BEGIN
    INSERT INTO alerts_fts (rowid, title, search_text) VALUES (new.id, new.title, new.search_text);
END;
