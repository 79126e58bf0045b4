ALTER TABLE users DROP COLUMN disabled_at;
ALTER TABLE feeds DROP COLUMN retired_at;
ALTER TABLE feeds DROP COLUMN members;
