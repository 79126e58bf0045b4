ALTER TABLE alerts DROP COLUMN quote_ap_id;
DROP TABLE announces;
DROP TABLE review_items;
DROP TABLE feeds;
DROP TABLE members;
