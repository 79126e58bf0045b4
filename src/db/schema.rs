//! Diesel table definitions, shared by the SQLite and PostgreSQL back ends.
//! Timestamps are milliseconds since the Unix epoch in `BIGINT` columns, so
//! both back ends compare and sort them the same way.

diesel::table! {
    actors (id) {
        id -> BigInt,
        ap_id -> Text,
        kind -> Text,
        username -> Text,
        domain -> Text,
        local -> Bool,
        name -> Nullable<Text>,
        summary -> Nullable<Text>,
        inbox -> Text,
        shared_inbox -> Nullable<Text>,
        outbox -> Nullable<Text>,
        followers_url -> Nullable<Text>,
        url -> Nullable<Text>,
        icon -> Nullable<Text>,
        public_key_id -> Text,
        public_key_pem -> Text,
        private_key_pem -> Nullable<Text>,
        last_refreshed_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    follows (id) {
        id -> BigInt,
        follower_id -> BigInt,
        target_id -> BigInt,
        state -> Text,
        activity_ap_id -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    received_activities (ap_id) {
        ap_id -> Text,
        received_at -> BigInt,
    }
}

diesel::table! {
    inbox_queue (id) {
        id -> BigInt,
        ap_id -> Text,
        signer -> Text,
        body -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        locked_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        failed_at -> Nullable<BigInt>,
        created_at -> BigInt,
        batch -> Bool,
    }
}

diesel::table! {
    outgoing_activities (id) {
        id -> BigInt,
        ap_id -> Text,
        actor_id -> BigInt,
        kind -> Text,
        json -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        activity_id -> BigInt,
        inbox -> Text,
        host -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        locked_until -> Nullable<BigInt>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    hosts (host) {
        host -> Text,
        consecutive_failures -> Integer,
        down_until -> Nullable<BigInt>,
        last_success_at -> Nullable<BigInt>,
        last_failure_at -> Nullable<BigInt>,
        signature_style -> Nullable<Text>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        name -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked -> Bool,
    }
}

diesel::joinable!(deliveries -> outgoing_activities (activity_id));
diesel::joinable!(outgoing_activities -> actors (actor_id));

diesel::table! {
    alerts (id) {
        id -> BigInt,
        ap_id -> Text,
        actor_id -> BigInt,
        local -> Bool,
        translation_of -> Nullable<BigInt>,
        language -> Text,
        title -> Text,
        content_html -> Text,
        source_markdown -> Nullable<Text>,
        summary -> Nullable<Text>,
        sensitive -> Bool,
        countries -> Text,
        region -> Nullable<Text>,
        categories -> Text,
        urgency -> Text,
        incident_date -> Nullable<Text>,
        case_ap_id -> Nullable<Text>,
        url -> Nullable<Text>,
        status -> Text,
        pinned -> Bool,
        token_id -> Nullable<BigInt>,
        published_at -> Nullable<BigInt>,
        updated_at -> BigInt,
        created_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        search_text -> Text,
        quote_ap_id -> Nullable<Text>,
    }
}

diesel::table! {
    alert_attachments (id) {
        id -> BigInt,
        alert_id -> BigInt,
        url -> Text,
        media_type -> Nullable<Text>,
        description -> Nullable<Text>,
        position -> Integer,
    }
}

diesel::table! {
    tombstones (ap_id) {
        ap_id -> Text,
        deleted_at -> BigInt,
    }
}

diesel::joinable!(alerts -> actors (actor_id));

diesel::table! {
    /// SQLite only: the FTS5 full-text index of alerts (external content,
    /// `rowid` = `alerts.id`), written by `db::alerts::insert`; searched
    /// with SQL of its own (`MATCH`). PostgreSQL has no such table.
    alerts_fts (rowid) {
        rowid -> BigInt,
        title -> Text,
        search_text -> Text,
    }
}
diesel::joinable!(alert_attachments -> alerts (alert_id));

diesel::table! {
    members (actor_id) {
        actor_id -> BigInt,
        region -> Nullable<Text>,
        countries -> Text,
        added_at -> BigInt,
    }
}

diesel::table! {
    feeds (actor_id) {
        actor_id -> BigInt,
        mode -> Text,
        regions -> Text,
        countries -> Text,
        categories -> Text,
        languages -> Text,
        urgencies -> Text,
        members -> Text,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    review_items (id) {
        id -> BigInt,
        alert_id -> BigInt,
        state -> Text,
        matched_feeds -> Text,
        approved_feeds -> Text,
        reason -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<BigInt>,
        curated_alert_id -> Nullable<BigInt>,
        edited_after_approval -> Bool,
        created_at -> BigInt,
        approved_text -> Nullable<Text>,
    }
}

diesel::table! {
    announces (id) {
        id -> BigInt,
        feed_actor_id -> BigInt,
        alert_id -> BigInt,
        ap_id -> Text,
        undone -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    actor_keys (id) {
        id -> BigInt,
        actor_id -> BigInt,
        key_id -> Text,
        public_key_multibase -> Text,
        private_key -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    publication_issues (id) {
        id -> BigInt,
        publication -> Text,
        language -> Text,
        period_start -> BigInt,
        period_end -> BigInt,
        title -> Text,
        state -> Text,
        ap_id -> Nullable<Text>,
        published_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    publication_items (id) {
        id -> BigInt,
        issue_id -> BigInt,
        section -> Text,
        section_position -> Integer,
        position -> Integer,
        story -> Nullable<Text>,
        alert_id -> Nullable<BigInt>,
        heading -> Text,
        body_html -> Text,
        url -> Nullable<Text>,
        body_markdown -> Nullable<Text>,
    }
}

diesel::table! {
    subscribers (id) {
        id -> BigInt,
        email -> Text,
        state -> Text,
        token -> Text,
        publications -> Text,
        languages -> Text,
        regions -> Text,
        paused_reason -> Nullable<Text>,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        updated_at -> BigInt,
        consent -> Text,
        notice_sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    mail_runs (issue_id) {
        issue_id -> BigInt,
        holder -> Text,
        lease_until -> BigInt,
        started_at -> BigInt,
        finished_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    digest_runs (schedule_key, due_at) {
        schedule_key -> Text,
        due_at -> BigInt,
        state -> Text,
        issue_id -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    mail_sends (issue_id, subscriber_id) {
        issue_id -> BigInt,
        subscriber_id -> BigInt,
        state -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    curation_pending (id) {
        id -> BigInt,
        alert_id -> BigInt,
        edit -> Bool,
        raw_activity -> Nullable<Text>,
        named -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(curation_pending -> alerts (alert_id));
diesel::joinable!(actor_keys -> actors (actor_id));
diesel::joinable!(members -> actors (actor_id));
diesel::joinable!(feeds -> actors (actor_id));

diesel::allow_tables_to_appear_in_same_query!(
    actors,
    follows,
    received_activities,
    inbox_queue,
    outgoing_activities,
    deliveries,
    hosts,
    api_tokens,
    alerts,
    alert_attachments,
    tombstones,
    members,
    feeds,
    review_items,
    announces,
    curation_pending,
    actor_keys,
    publication_issues,
    publication_items,
    subscribers,
    mail_sends,
    mail_runs,
    digest_runs,
    campaigns,
    campaign_participants,
    alert_campaigns,
    campaign_statements,
    statement_signers,
    statement_requests,
    campaign_actions,
);

diesel::table! {
    users (id) {
        id -> BigInt,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        failed_logins -> Integer,
        locked_until -> Nullable<BigInt>,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> BigInt,
        csrf_token -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, sessions);

diesel::table! {
    domain_policies (domain) {
        domain -> Text,
        policy -> Text,
        reason -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    campaigns (id) {
        id -> BigInt,
        actor_id -> BigInt,
        aims -> Text,
        country -> Nullable<Text>,
        theme -> Nullable<Text>,
        created_at -> BigInt,
        closed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    campaign_participants (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        actor_id -> BigInt,
        state -> Text,
        invited_at -> BigInt,
        joined_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    alert_campaigns (alert_id, campaign_ap_id) {
        alert_id -> BigInt,
        campaign_ap_id -> Text,
        campaign_inbox -> Text,
    }
}

diesel::joinable!(campaigns -> actors (actor_id));
diesel::joinable!(campaign_participants -> campaigns (campaign_id));

diesel::table! {
    campaign_statements (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        title -> Text,
        body -> Text,
        language -> Text,
        state -> Text,
        alert_id -> Nullable<BigInt>,
        created_at -> BigInt,
        published_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    statement_signers (id) {
        id -> BigInt,
        statement_id -> BigInt,
        actor_id -> BigInt,
        offer_ap_id -> Nullable<Text>,
        state -> Text,
        confirmed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    statement_requests (id) {
        id -> BigInt,
        offer_ap_id -> Text,
        campaign_actor_id -> BigInt,
        actor_id -> BigInt,
        title -> Text,
        content_html -> Text,
        state -> Text,
        received_at -> BigInt,
        answered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    campaign_actions (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        title -> Text,
        body -> Text,
        content_html -> Text,
        starts_at -> Nullable<BigInt>,
        ends_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}
