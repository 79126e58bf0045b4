DROP TABLE curation_pending;
