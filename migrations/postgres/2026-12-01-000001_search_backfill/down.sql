-- Nothing to undo: the backfilled search text and index are harmless.
SELECT 1;
