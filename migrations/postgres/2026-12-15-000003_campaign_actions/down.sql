DROP TABLE campaign_actions;
