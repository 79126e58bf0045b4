-- Alerts stored before full-text search existed: index them (the FTS5
-- table's triggers only index rows written after it was created), then give
-- them search text (their Markdown, else their HTML), which the update
-- trigger indexes. In this order: the trigger removes index entries, and
-- removing one that is not there corrupts an external-content FTS5 index.
INSERT INTO alerts_fts (alerts_fts) VALUES ('rebuild');
UPDATE alerts SET search_text = COALESCE(source_markdown, content_html) WHERE search_text = '';
