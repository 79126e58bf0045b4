-- Federation policy per remote domain: 'block', 'silence' or 'allow'
-- (see docs/security.md). A domain covers its subdomains.
CREATE TABLE domain_policies (
    domain TEXT PRIMARY KEY NOT NULL,
    policy TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL
);
