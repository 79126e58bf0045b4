DROP TABLE inbox_queue;
