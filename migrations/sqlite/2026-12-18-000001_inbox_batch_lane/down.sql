DROP INDEX inbox_queue_lane;
ALTER TABLE inbox_queue DROP COLUMN batch;
