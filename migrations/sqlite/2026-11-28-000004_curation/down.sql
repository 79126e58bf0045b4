DROP TABLE announces;
DROP TABLE review_items;
DROP TABLE feeds;
DROP TABLE members;
