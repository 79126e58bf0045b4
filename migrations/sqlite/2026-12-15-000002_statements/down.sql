DROP TABLE statement_requests;
DROP TABLE statement_signers;
DROP TABLE campaign_statements;
