DROP TABLE mail_runs;
ALTER TABLE subscribers DROP COLUMN consent;
