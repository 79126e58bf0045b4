-- A new alert is indexed for full-text search by `db::alerts::insert`, in
-- its own statement, no longer by a trigger. A statement that fires a
-- trigger writing the FTS5 table opens a statement savepoint, and FTS5
-- writes out what it holds at every savepoint: inside a transaction that
-- stores many alerts (the inbox's), each alert made an index segment of
-- its own, which merges then rewrote. The update and delete triggers stay.
DROP TRIGGER alerts_fts_insert;
