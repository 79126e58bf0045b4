-- Ed25519 keys (FEP-521a Multikeys): our actors' own, with the private
-- half, and the assertionMethod keys of remote actors, for checking
-- object integrity proofs (FEP-8b32) without HTTP.
CREATE TABLE actor_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    key_id TEXT NOT NULL UNIQUE,
    public_key_multibase TEXT NOT NULL,
    private_key TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX actor_keys_actor ON actor_keys (actor_id);
