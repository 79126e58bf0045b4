DROP TABLE api_tokens;
DROP TABLE hosts;
DROP TABLE deliveries;
DROP TABLE outgoing_activities;
DROP TABLE received_activities;
DROP TABLE follows;
DROP TABLE actors;
