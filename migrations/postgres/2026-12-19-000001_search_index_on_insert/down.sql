-- Nothing to change here: PostgreSQL keeps an alert's search vector in its
-- row. This migration exists so that both back ends name the same
-- migrations (a backup records the last one). On SQLite it drops the
-- trigger that indexed new alerts (see migrations/sqlite).
SELECT 1;
