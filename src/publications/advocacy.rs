//! Assembling an Advocacy Action News issue: what the joint campaigns
//! hosted here did in a period, one section per campaign (its announced
//! participants' alerts and its own published statements), in one
//! language.

use crate::db::{
    self,
    alerts::{AlertFilter, AlertRow},
    publications::{self, NewIssue, NewItem},
    DbConn, DbError,
};

/// At most this many items per campaign and issue.
const PER_CAMPAIGN: i64 = 200;

/// Orders each campaign's timeline into items: campaigns in the order
/// given, a campaign's alerts oldest first; campaigns with nothing in
/// `language` are left out. `timelines` pairs a campaign's display name
/// with its alerts.
pub fn assemble(timelines: &[(String, Vec<AlertRow>)], language: &str) -> Vec<NewItem> {
    let mut items = Vec::new();
    for (campaign, alerts) in timelines {
        let mut alerts: Vec<&AlertRow> = alerts.iter().filter(|a| a.language == language).collect();
        alerts.sort_by_key(|a| (a.published_at.unwrap_or(a.created_at), a.id));
        items.extend(alerts.into_iter().map(|alert| {
            NewItem {
                section: campaign.clone(),
                story: alert.case_ap_id.clone(),
                alert_id: Some(alert.id),
                heading: alert.title.clone(),
                body_html: alert
                    .summary
                    .as_ref()
                    .map(|s| format!("<p>{}</p>", html_escape::encode_text(s)))
                    .unwrap_or_else(|| alert.content_html.clone()),
                body_markdown: None,
                url: Some(alert.url.clone().unwrap_or_else(|| alert.ap_id.clone())),
            }
        }));
    }
    items
}

/// Builds a draft Advocacy Action News issue for `[start, end)` in
/// `language` from every campaign's timeline and returns its id.
pub fn build(conn: &mut DbConn, language: &str, start: i64, end: i64) -> Result<i64, DbError> {
    let mut timelines = Vec::new();
    for (_, actor) in db::campaigns::all(conn)? {
        let filter = AlertFilter {
            language: Some(language.to_string()),
            since: Some(start),
            until: Some(end),
            by_or_boosted_by: Some(actor.id),
            ..Default::default()
        };
        let alerts = db::alerts::list(conn, &filter, PER_CAMPAIGN, 0)?;
        timelines.push((actor.name.clone().unwrap_or(actor.username.clone()), alerts));
    }
    let items = assemble(&timelines, language);
    let date = chrono::DateTime::from_timestamp_millis(end)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let title = format!("Advocacy Action News {date} ({language})");
    publications::create_issue(
        conn,
        &NewIssue {
            publication: super::ADVOCACY,
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

    fn alert(id: i64, lang: &str, at: i64) -> AlertRow {
        AlertRow {
            language: lang.into(),
            title: format!("Alert {id}"),
            content_html: format!("<p>body {id}</p>"),
            published_at: Some(at),
            created_at: at,
            ..AlertRow::sample(id)
        }
    }

    #[test]
    fn one_section_per_campaign_in_time_order() {
        let timelines = vec![
            (
                "End impunity".to_string(),
                vec![alert(2, "en", 300), alert(1, "en", 100), alert(5, "fr", 50)],
            ),
            ("Quiet campaign".to_string(), vec![alert(6, "fr", 10)]),
            ("Free the Net".to_string(), vec![alert(3, "en", 200)]),
        ];
        let items = assemble(&timelines, "en");
        let got: Vec<(&str, i64)> = items
            .iter()
            .map(|i| (i.section.as_str(), i.alert_id.unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("End impunity", 1),
                ("End impunity", 2),
                ("Free the Net", 3)
            ]
        );
        assert_eq!(items[0].heading, "Alert 1");
        assert_eq!(items[0].body_html, "<p>body 1</p>");
    }
}
