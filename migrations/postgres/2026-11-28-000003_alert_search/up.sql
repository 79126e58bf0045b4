-- Full-text search over alerts: plain text kept beside the HTML and a
-- generated tsvector with a GIN index ('simple': the archive is multilingual).
ALTER TABLE alerts ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', title || ' ' || search_text)) STORED;
CREATE INDEX alerts_search ON alerts USING GIN (search_vector);
