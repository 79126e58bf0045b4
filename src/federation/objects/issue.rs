//! A published issue of a publication on the wire: an `Article` by the
//! publication's `Service` actor, and the `Create` that brings it to the
//! actor's followers. Pure builders: the callers load the rows.

use super::alert::rfc3339;
use crate::{db::publications::IssueRow, federation::Urls};
use activitypub_federation::kinds::public;
use serde_json::{json, Value};

/// `@context` of an Article and of its Create.
pub const CONTEXT: &str = "https://www.w3.org/ns/activitystreams";

/// The short `summary` of an issue: its period as dates, `[start, end)`,
/// which reads the same in every language.
pub fn period_summary(issue: &IssueRow) -> String {
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let (first, last) = (day(issue.period_start), day(issue.period_end - 1));
    if first == last {
        first
    } else {
        format!("{first} – {last}")
    }
}

/// The `Article` of a published issue, `content_html` being its body as on
/// its page. Its `id` and `url` are the issue's address, which serves this
/// JSON to ActivityPub clients and the HTML page to browsers.
pub fn article(base_url: &str, issue: &IssueRow, content_html: &str) -> Value {
    let urls = Urls::from_base(base_url);
    let id = issue
        .ap_id
        .clone()
        .unwrap_or_else(|| crate::publications::issue_ap_id(base_url, issue));
    json!({
        "id": id,
        "type": "Article",
        "attributedTo": urls.actor(&issue.publication),
        "name": issue.title,
        "summary": period_summary(issue),
        "content": content_html,
        "contentMap": { issue.language.clone(): content_html },
        "mediaType": "text/html",
        "url": id,
        "published": rfc3339(issue.published_at.unwrap_or(issue.updated_at)),
        "to": [public()],
        "cc": [urls.actor_part(&issue.publication, "followers")],
    })
}

/// The `Create` of `article` by the issue's publication actor. Its id is
/// derived from the issue's, so an issue has one Create however often it
/// is built.
pub fn create(base_url: &str, issue: &IssueRow, article: Value) -> Value {
    let urls = Urls::from_base(base_url);
    json!({
        "@context": CONTEXT,
        "id": format!("{}#create", article["id"].as_str().unwrap_or_default()),
        "type": "Create",
        "actor": urls.actor(&issue.publication),
        "published": article["published"],
        "to": article["to"],
        "cc": article["cc"],
        "object": article,
    })
}

/// The `Article` as a document of its own (with `@context`), as the
/// issue's address serves it.
pub fn document(base_url: &str, issue: &IssueRow, content_html: &str) -> Value {
    let mut article = article(base_url, issue, content_html);
    article["@context"] = json!(CONTEXT);
    article
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue() -> IssueRow {
        IssueRow {
            id: 7,
            publication: "digest".into(),
            language: "fr".into(),
            period_start: 1_764_547_200_000, // 2025-12-01
            period_end: 1_765_152_000_000,   // 2025-12-08
            title: "Digest 2025-12-08 (fr)".into(),
            state: "published".into(),
            ap_id: Some("https://ngo.example/publications/digest/issues/7".into()),
            published_at: Some(1_765_184_400_000),
            created_at: 1_765_180_000_000,
            updated_at: 1_765_184_400_000,
        }
    }

    #[test]
    fn article_has_the_fields_mastodon_reads() {
        let a = article("https://ngo.example", &issue(), "<section>x</section>");
        assert_eq!(a["id"], "https://ngo.example/publications/digest/issues/7");
        assert_eq!(a["type"], "Article");
        assert_eq!(a["attributedTo"], "https://ngo.example/actors/digest");
        assert_eq!(a["name"], "Digest 2025-12-08 (fr)");
        assert_eq!(a["content"], "<section>x</section>");
        assert_eq!(a["contentMap"]["fr"], "<section>x</section>");
        assert_eq!(a["url"], a["id"]);
        assert_eq!(a["summary"], "2025-12-01 – 2025-12-07");
        assert_eq!(a["published"], "2025-12-08T09:00:00.000Z");
        assert_eq!(
            a["to"],
            json!(["https://www.w3.org/ns/activitystreams#Public"])
        );
        assert_eq!(
            a["cc"],
            json!(["https://ngo.example/actors/digest/followers"])
        );
    }

    #[test]
    fn create_wraps_the_article_with_the_same_audience() {
        let base = "https://ngo.example";
        let c = create(base, &issue(), article(base, &issue(), "<p>x</p>"));
        assert_eq!(c["type"], "Create");
        assert_eq!(
            c["id"],
            "https://ngo.example/publications/digest/issues/7#create"
        );
        assert_eq!(c["actor"], "https://ngo.example/actors/digest");
        assert_eq!(c["to"], c["object"]["to"]);
        assert_eq!(c["cc"], c["object"]["cc"]);
        assert_eq!(c["published"], c["object"]["published"]);
        assert!(crate::federation::proofs::wants_proof(&c));
    }
}
