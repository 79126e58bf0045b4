-- Publications (the Digest, the Communiqué, later other bulletins): each
-- issue has a language, a period, a state and ordered items in sections.
CREATE TABLE publication_issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    publication TEXT NOT NULL,
    language TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    title TEXT NOT NULL,
    state TEXT NOT NULL,
    ap_id TEXT UNIQUE,
    published_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX publication_issues_pub ON publication_issues (publication, language, period_end);

-- Items of an issue: ordered sections, ordered items inside a section.
-- A Digest item points at an alert; `story` groups alerts of one case.
CREATE TABLE publication_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id BIGINT NOT NULL REFERENCES publication_issues (id) ON DELETE CASCADE,
    section TEXT NOT NULL,
    section_position INTEGER NOT NULL,
    position INTEGER NOT NULL,
    story TEXT,
    alert_id BIGINT REFERENCES alerts (id) ON DELETE SET NULL,
    heading TEXT NOT NULL,
    body_html TEXT NOT NULL,
    url TEXT
);
CREATE INDEX publication_items_issue ON publication_items (issue_id, section_position, position);

-- E-mail subscribers. Addresses live here only; logs name subscriber ids.
CREATE TABLE subscribers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    publications TEXT NOT NULL,
    languages TEXT NOT NULL,
    regions TEXT NOT NULL,
    paused_reason TEXT,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    updated_at BIGINT NOT NULL
);

-- One row per (issue, subscriber): claimed as 'sending' before the SMTP
-- hand-over, 'sent' after. A 'sending' row is never sent again (at most once).
CREATE TABLE mail_sends (
    issue_id BIGINT NOT NULL REFERENCES publication_issues (id) ON DELETE CASCADE,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (issue_id, subscriber_id)
);
CREATE INDEX mail_sends_state ON mail_sends (issue_id, state);
