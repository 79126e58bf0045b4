-- How a subscriber consented: the sign-up form (with its confirmation), or
-- an import of people who had consented before.
ALTER TABLE subscribers ADD COLUMN consent TEXT NOT NULL DEFAULT '';

-- One running sender per issue: `tocsin digest send` holds the issue for
-- lease_until and renews it per batch; a killed sender's lease runs out.
-- `finished_at` is set when every recipient has a final state.
CREATE TABLE mail_runs (
    issue_id BIGINT PRIMARY KEY REFERENCES publication_issues (id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);

-- mail_sends keeps its columns, with a new meaning for 'sending': a row is
-- 'sending' from its claim until the server's 250 is recorded as 'sent', and
-- the next sender sends it again (same Message-ID). See docs/publications.md.
