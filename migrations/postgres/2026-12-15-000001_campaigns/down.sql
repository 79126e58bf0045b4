DROP TABLE alert_campaigns;
DROP TABLE campaign_participants;
DROP TABLE campaigns;
