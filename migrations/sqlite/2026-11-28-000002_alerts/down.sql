DROP TABLE tombstones;
DROP TABLE alert_attachments;
DROP TABLE alerts;
