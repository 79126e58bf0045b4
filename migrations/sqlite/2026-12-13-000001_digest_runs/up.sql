-- One row per Digest schedule and due time the scheduler has handled: the
-- primary key makes a due time run once, across restarts and processes.
-- `state`: 'baseline' (the schedule's first due time seen, not built),
-- 'built' (a draft was made) or 'published'.
CREATE TABLE digest_runs (
    schedule_key TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    issue_id BIGINT REFERENCES publication_issues (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (schedule_key, due_at)
);
