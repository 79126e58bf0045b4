//! Assembling a Digest issue: the approved alerts of a period in one
//! language, grouped by region, then country, then story.
//!
//! A story is the alerts of one case. Alerts are linked by their
//! `case_ap_id` (the case an alert follows up, carried as `inReplyTo`); a
//! curated alert without one joins the story of the member original it
//! quotes (`quote_ap_id`); any other alert is a story of its own. A story
//! is placed under the region and first country of its earliest alert, so
//! the alerts of one case are never split across sections.

use crate::db::{
    alerts::AlertRow,
    publications::{self, NewIssue, NewItem},
    DbConn, DbError,
};
use std::collections::BTreeMap;

/// Section name for alerts without a region.
pub const NO_REGION: &str = "other";

/// The story an alert belongs to.
pub fn story_key(alert: &AlertRow) -> &str {
    alert
        .case_ap_id
        .as_deref()
        .or(alert.quote_ap_id.as_deref())
        .unwrap_or(&alert.ap_id)
}

/// Where a story goes: region, country, time of its first alert, key.
type Place<'a> = (String, String, i64, &'a str);

fn when(alert: &AlertRow) -> i64 {
    alert.published_at.unwrap_or(alert.created_at)
}

/// Orders alerts into Digest items: regions and countries alphabetically,
/// stories by their earliest alert, alerts of a story oldest first. Only
/// alerts in `language` are kept.
pub fn assemble(alerts: &[AlertRow], language: &str) -> Vec<NewItem> {
    let mut stories: BTreeMap<&str, Vec<&AlertRow>> = BTreeMap::new();
    for alert in alerts.iter().filter(|a| a.language == language) {
        stories.entry(story_key(alert)).or_default().push(alert);
    }
    let mut placed: Vec<(Place<'_>, Vec<&AlertRow>)> = stories
        .into_iter()
        .map(|(key, mut story)| {
            story.sort_by_key(|a| (when(a), a.id));
            let first = story[0];
            let region = first
                .region
                .clone()
                .unwrap_or_else(|| NO_REGION.to_string());
            let country = first.country_list().into_iter().next().unwrap_or_default();
            ((region, country, when(first), key), story)
        })
        .collect();
    placed.sort_by(|a, b| a.0.cmp(&b.0));
    placed
        .into_iter()
        .flat_map(|((region, country, _, key), story)| {
            story.into_iter().map(move |alert| NewItem {
                section: region.clone(),
                story: Some(key.to_string()),
                alert_id: Some(alert.id),
                heading: if country.is_empty() {
                    alert.title.clone()
                } else {
                    format!("{country}: {}", alert.title)
                },
                body_html: alert
                    .summary
                    .as_ref()
                    .map(|s| format!("<p>{}</p>", html_escape::encode_text(s)))
                    .unwrap_or_else(|| alert.content_html.clone()),
                url: Some(alert.url.clone().unwrap_or_else(|| alert.ap_id.clone())),
                body_markdown: None,
            })
        })
        .collect()
}

/// Builds a draft Digest issue for `[start, end)` in `language` and returns
/// its id.
pub fn build(conn: &mut DbConn, language: &str, start: i64, end: i64) -> Result<i64, DbError> {
    let alerts = publications::digest_alerts(conn, language, start, end)?;
    let items = assemble(&alerts, language);
    let date = chrono::DateTime::from_timestamp_millis(end)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let title = format!("Digest {date} ({language})");
    publications::create_issue(
        conn,
        &NewIssue {
            publication: super::DIGEST,
            language,
            period_start: start,
            period_end: end,
            title: &title,
        },
        &items,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: i64, lang: &str, region: Option<&str>, countries: &str, at: i64) -> AlertRow {
        AlertRow {
            language: lang.into(),
            title: format!("Alert {id}"),
            content_html: format!("<p>body {id}</p>"),
            countries: countries.into(),
            region: region.map(String::from),
            published_at: Some(at),
            created_at: at,
            ..AlertRow::sample(id)
        }
    }

    fn ids(items: &[NewItem]) -> Vec<i64> {
        items.iter().filter_map(|i| i.alert_id).collect()
    }

    #[test]
    fn groups_by_region_country_then_story() {
        let case = Some("https://m.example/cases/7".to_string());
        let mut a1 = alert(1, "en", Some("mena"), ",TR,", 500);
        a1.case_ap_id = case.clone();
        let a2 = alert(2, "en", Some("africa"), ",NG,", 400);
        let a3 = alert(3, "en", Some("mena"), ",SY,", 100);
        // A follow-up of the same case, reported later and under another
        // country: it stays with its story under TR.
        let mut a4 = alert(4, "en", Some("mena"), ",SY,", 900);
        a4.case_ap_id = case.clone();
        let a5 = alert(5, "en", Some("mena"), ",TR,", 50);
        let a6 = alert(6, "en", None, "", 10);
        let items = assemble(&[a1, a2, a3, a4, a5, a6], "en");
        assert_eq!(ids(&items), vec![2, 3, 5, 1, 4, 6]);
        let sections: Vec<&str> = items.iter().map(|i| i.section.as_str()).collect();
        assert_eq!(
            sections,
            ["africa", "mena", "mena", "mena", "mena", NO_REGION]
        );
        assert_eq!(items[3].story, case);
        assert_eq!(items[4].story, case);
        assert_eq!(items[0].heading, "NG: Alert 2");
        assert_eq!(items[5].heading, "Alert 6");
    }

    #[test]
    fn curated_alert_joins_the_original_it_quotes() {
        let original = alert(1, "en", Some("asia"), ",IN,", 100);
        let other = alert(2, "en", Some("asia"), ",IN,", 200);
        let mut curated = alert(3, "en", Some("asia"), ",IN,", 300);
        curated.quote_ap_id = Some(original.ap_id.clone());
        let items = assemble(&[other, curated, original], "en");
        assert_eq!(ids(&items), vec![1, 3, 2]);
    }

    #[test]
    fn keeps_only_the_language_asked_for() {
        let items = assemble(
            &[
                alert(1, "en", Some("asia"), ",IN,", 1),
                alert(2, "fr", Some("asia"), ",IN,", 2),
                alert(3, "es", Some("asia"), ",IN,", 3),
            ],
            "fr",
        );
        assert_eq!(ids(&items), vec![2]);
    }

    #[test]
    fn summary_is_escaped_and_preferred_to_the_body() {
        let mut a = alert(1, "en", None, "", 1);
        a.summary = Some("<b>x</b>".into());
        let items = assemble(&[a], "en");
        assert_eq!(items[0].body_html, "<p>&lt;b&gt;x&lt;/b&gt;</p>");
    }
}
