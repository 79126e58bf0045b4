//! Public pages of the publications: the index of a publication's
//! published issues and one page per issue, at the issue's ActivityPub id.

use crate::{
    db::publications::{self as rows, IssueRow, ItemRow},
    error::Error,
    publications,
    state::Data,
    web::{
        pages::render,
        session::{viewer, Viewer},
    },
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use askama::Template;

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/publications/{publication}", aw::get().to(index))
        .route(
            "/publications/{publication}/issues/{id}",
            aw::get().to(issue_page),
        );
}

/// The publications this instance has, with their message keys.
fn known(publication: &str) -> Result<&'static str, Error> {
    match publication {
        publications::DIGEST => Ok("publication-digest"),
        publications::COMMUNIQUE => Ok("publication-communique"),
        publications::ADVOCACY => Ok("publication-advocacy"),
        _ => Err(Error::NotFound),
    }
}

/// An issue in the index.
pub struct IssueLink {
    pub title: String,
    pub href: String,
    pub date: String,
    pub language: String,
}

/// A section of an issue with its items.
pub struct Section {
    pub name: String,
    pub items: Vec<ItemRow>,
}

#[derive(Template)]
#[template(path = "publication_index.html")]
struct IndexPage<'a> {
    v: &'a Viewer,
    title: String,
    issues: Vec<IssueLink>,
}

#[derive(Template)]
#[template(path = "publication_issue.html")]
struct IssuePage<'a> {
    v: &'a Viewer,
    title: String,
    publication: String,
    publication_href: String,
    language: String,
    date: String,
    sections: Vec<Section>,
}

/// The body of an issue: its sections and items as HTML, shared by the
/// page, the feeds and the `Article`.
#[derive(Template)]
#[template(path = "publication_issue_body.html")]
pub struct IssueBody {
    pub sections: Vec<Section>,
}

/// The HTML body of an issue made of `items`.
pub fn issue_html(items: Vec<ItemRow>) -> String {
    IssueBody {
        sections: sections(items),
    }
    .render()
    .unwrap_or_default()
}

/// Items in their order, grouped into consecutive sections.
pub fn sections(items: Vec<ItemRow>) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some(s) if s.name == item.section => s.items.push(item),
            _ => out.push(Section {
                name: item.section.clone(),
                items: vec![item],
            }),
        }
    }
    out
}

async fn index(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let publication = path.into_inner();
    let key = known(&publication)?;
    let v = viewer(&request, &data).await?;
    let issues: Vec<IssueRow> = data
        .db
        .run(move |conn| rows::published_issues(conn, &publication, 100))
        .await?;
    let page = IndexPage {
        title: v.lang.t(key),
        issues: issues
            .iter()
            .map(|i| IssueLink {
                title: i.title.clone(),
                href: i.ap_id.clone().unwrap_or_default(),
                date: v.lang.date(i.published_at.unwrap_or(i.updated_at)),
                language: i.language.clone(),
            })
            .collect(),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

async fn issue_page(
    request: HttpRequest,
    path: aw::Path<(String, i64)>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let (publication, id) = path.into_inner();
    let key = known(&publication)?;
    let v = viewer(&request, &data).await?;
    let (issue, items) = data
        .db
        .run(move |conn| Ok((rows::issue(conn, id)?, rows::items(conn, id)?)))
        .await?;
    if issue.publication != publication || issue.state != rows::PUBLISHED {
        return Err(Error::NotFound);
    }
    let page = IssuePage {
        title: issue.title.clone(),
        publication: v.lang.t(key),
        publication_href: format!("/publications/{publication}"),
        language: issue.language.clone(),
        date: v.lang.date(issue.published_at.unwrap_or(issue.updated_at)),
        sections: sections(items),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}
