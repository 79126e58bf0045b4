DROP TABLE mail_sends;
DROP TABLE subscribers;
DROP TABLE publication_items;
DROP TABLE publication_issues;
