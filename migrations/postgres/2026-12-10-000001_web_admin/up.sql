-- Feeds edited in the browser: a feed may take only some members' alerts
-- (handles `user@host`, `,a,b,`; empty takes every member's), and a
-- retired feed keeps its actor and followers but boosts nothing.
ALTER TABLE feeds ADD COLUMN members TEXT NOT NULL DEFAULT '';
ALTER TABLE feeds ADD COLUMN retired_at BIGINT;
-- An admin can disable an account: it cannot log in, its sessions end.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
