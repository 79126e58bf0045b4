//! Curated feeds as editors manage them: create a feed (a followable
//! `Service` actor with keys), change its rules, retire it. The database
//! holds the feeds; `[[feeds]]` in the configuration only seeds them on
//! first start (see `sync_feeds`).

use crate::{
    config::Config,
    curation::{FeedRules, SERVICE},
    db::{self, actors::ActorRow, alerts::join_list, curation::FeedRow, now_ms},
    error::Error,
    state::Data,
};

/// `mode` of a feed whose matches wait for an editor.
pub const REVIEW: &str = "review";
/// `mode` of a feed that boosts every match.
pub const AUTO: &str = "auto";
/// `mode` of a retired feed.
pub const OFF: &str = "off";

/// A feed as an editor describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedSpec {
    /// Handle: `@username@domain`.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Biography, plain text.
    pub summary: String,
    /// Matches wait for an editor (else they are boosted at once).
    pub review: bool,
    /// Which alerts it takes (members as `@user@host` or `user@host`).
    pub rules: FeedRules,
}

fn cleaned(values: &[String], upper: bool) -> Vec<String> {
    let mut out: Vec<String> = values
        .iter()
        .map(|s| s.trim().trim_start_matches('@'))
        .filter(|s| !s.is_empty())
        .map(|s| {
            if upper {
                s.to_uppercase()
            } else {
                s.to_lowercase()
            }
        })
        .collect();
    out.dedup();
    out
}

impl FeedSpec {
    /// Its rules as a `feeds` row with `mode`.
    pub fn row(&self, actor_id: i64, mode: &str) -> FeedRow {
        let r = &self.rules;
        FeedRow {
            actor_id,
            mode: mode.to_string(),
            regions: join_list(&cleaned(&r.regions, false)),
            countries: join_list(&cleaned(&r.countries, true)),
            categories: join_list(&cleaned(&r.categories, false)),
            // Language tags keep their case (`pt-BR`).
            languages: join_list(
                &r.languages
                    .iter()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>(),
            ),
            urgencies: join_list(&cleaned(&r.urgencies, false)),
            members: join_list(&cleaned(&r.members, false)),
            retired_at: None,
        }
    }

    fn mode(&self) -> &'static str {
        if self.review {
            REVIEW
        } else {
            AUTO
        }
    }

    fn check(&self) -> Result<(), Error> {
        let invalid = |field: &str, message: &str| {
            Err(Error::Validation {
                field: field.into(),
                message: message.into(),
            })
        };
        let name = &self.username;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return invalid(
                "username",
                "must be 1 to 64 lower-case letters, digits or _",
            );
        }
        for l in &self.rules.languages {
            if !crate::alerts::input::is_language_tag(l.trim()) {
                return invalid("languages", &format!("{l} is not a language tag"));
            }
        }
        for u in &self.rules.urgencies {
            if !crate::alerts::URGENCIES.contains(&u.trim()) {
                return invalid("urgencies", &format!("{u} is not an urgency"));
            }
        }
        for m in cleaned(&self.rules.members, false) {
            if crate::web::remote_follow::split_handle(&m).is_none() {
                return invalid("members", &format!("{m} is not user@host"));
            }
        }
        Ok(())
    }
}

/// The `Service` actor of feed `username`, created with keys if missing
/// (its name and summary are set either way).
pub fn ensure_actor(
    conn: &mut db::DbConn,
    config: &Config,
    username: &str,
    name: &str,
    summary: &str,
) -> Result<ActorRow, Error> {
    crate::federation::upsert_local_actor(
        conn,
        config,
        username,
        SERVICE,
        name.to_string(),
        summary.to_string(),
        None,
    )
}

/// Creates feed `spec.username`; a retired feed of that name comes back.
pub async fn create(data: &Data, spec: FeedSpec) -> Result<(), Error> {
    spec.check()?;
    let config = data.config.clone();
    data.db
        .run(move |conn| {
            let taken = db::actors::local_by_username(conn, &spec.username)?;
            let existing = db::curation::feed_by_username(conn, &spec.username)?;
            if taken.is_some()
                && existing
                    .as_ref()
                    .is_none_or(|(f, _)| f.retired_at.is_none())
            {
                return Ok(Err(Error::Validation {
                    field: "username".into(),
                    message: format!("@{} exists", spec.username),
                }));
            }
            let name = if spec.display_name.is_empty() {
                spec.username.clone()
            } else {
                spec.display_name.clone()
            };
            let actor = ensure_actor(conn, &config, &spec.username, &name, &spec.summary)
                .map_err(|e| db::DbError::Task(e.to_string()))?;
            db::curation::upsert_feed(conn, &spec.row(actor.id, spec.mode()))?;
            Ok(Ok(()))
        })
        .await?
}

/// Replaces the rules, name and summary of feed `spec.username`.
pub async fn update(data: &Data, spec: FeedSpec) -> Result<(), Error> {
    spec.check()?;
    let config = data.config.clone();
    data.db
        .run(move |conn| {
            let Some((row, actor)) = db::curation::feed_by_username(conn, &spec.username)? else {
                return Ok(Err(Error::NotFound));
            };
            if row.retired_at.is_some() {
                return Ok(Err(Error::Validation {
                    field: "username".into(),
                    message: "the feed is retired".into(),
                }));
            }
            if actor.kind == SERVICE {
                let name = if spec.display_name.is_empty() {
                    spec.username.clone()
                } else {
                    spec.display_name.clone()
                };
                ensure_actor(conn, &config, &spec.username, &name, &spec.summary)
                    .map_err(|e| db::DbError::Task(e.to_string()))?;
            }
            db::curation::upsert_feed(conn, &spec.row(row.actor_id, spec.mode()))?;
            Ok(Ok(()))
        })
        .await?
}

/// Retires feed `username`: it boosts nothing more and leaves the review
/// choices; its actor, followers and past boosts stay.
pub async fn retire(data: &Data, username: &str) -> Result<(), Error> {
    let username = username.to_string();
    data.db
        .run(move |conn| {
            let Some((row, _)) = db::curation::feed_by_username(conn, &username)? else {
                return Ok(Err(Error::NotFound));
            };
            db::curation::upsert_feed(
                conn,
                &FeedRow {
                    mode: OFF.into(),
                    retired_at: Some(now_ms()),
                    ..row
                },
            )?;
            Ok(Ok(()))
        })
        .await?
}

/// The form of feed `row`, for editing.
pub fn spec_of(row: &FeedRow, actor: &ActorRow) -> FeedSpec {
    FeedSpec {
        username: actor.username.clone(),
        display_name: actor.name.clone().unwrap_or_default(),
        summary: actor.summary.clone().unwrap_or_default(),
        review: row.mode == REVIEW,
        rules: FeedRules::of(row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_becomes_normalised_rules() {
        let spec = FeedSpec {
            username: "africa".into(),
            review: true,
            rules: FeedRules {
                regions: vec![" Africa ".into()],
                countries: vec!["ng".into(), "".into()],
                languages: vec!["pt-BR".into()],
                members: vec!["@Alerts@NGO.example".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        spec.check().unwrap();
        let row = spec.row(7, spec.mode());
        assert_eq!(row.mode, "review");
        assert_eq!(row.regions, ",africa,");
        assert_eq!(row.countries, ",NG,");
        assert_eq!(row.languages, ",pt-BR,");
        assert_eq!(row.members, ",alerts@ngo.example,");
        let bad = FeedSpec {
            username: "Bad Name".into(),
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let bad = FeedSpec {
            username: "x".into(),
            rules: FeedRules {
                members: vec!["nobody".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
