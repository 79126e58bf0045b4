-- Alerts stored before full-text search existed: give them search text
-- (their Markdown, else their HTML); the generated tsvector follows.
UPDATE alerts SET search_text = COALESCE(source_markdown, content_html) WHERE search_text = '';
