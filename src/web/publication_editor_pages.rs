//! Editors prepare the publications in the browser: the list of issues of
//! the Digest and the Communiqué with their state and e-mail progress,
//! building a Digest draft, writing a Communiqué draft and its items, and
//! an issue's page: the preview as the public page will show it, moving
//! items and sections up and down, removing items, publishing after a
//! confirmation, and sending a published issue by e-mail in the server's
//! background. Built on crate::publications and crate::mail::send; no
//! JavaScript.

use crate::{
    accounts::EDITOR,
    db::{
        self,
        publications::{self as rows, EditError, IssueRow, ItemRow, MailProgress, RunState},
    },
    error::Error,
    mail::{
        send::{start_in_background, Pace},
        Mailer,
    },
    publications::{
        self,
        communique::{self, WrittenItem},
        order,
    },
    state::Data,
    web::{
        author_pages::allowed,
        i18n::LANGS,
        pages::{choices, render, taxonomy, Choice},
        publication_pages::{sections, Section},
        session::{require, require_post, see_other, Form, Viewer},
    },
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use askama::Template;

/// Registers the routes (before the `/editor` scope, which answers 404 for
/// what it lacks).
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/editor/publications", aw::get().to(list))
        .route("/editor/publications/digest", aw::post().to(build_digest))
        .route(
            "/editor/publications/communique",
            aw::post().to(write_communique),
        )
        .route("/editor/publications/issues/{id}", aw::get().to(issue_page))
        .route(
            "/editor/publications/issues/{id}/move",
            aw::post().to(move_up_down),
        )
        .route(
            "/editor/publications/issues/{id}/remove",
            aw::post().to(remove),
        )
        .route(
            "/editor/publications/issues/{id}/publish",
            aw::get().to(confirm_publish),
        )
        .route(
            "/editor/publications/issues/{id}/publish",
            aw::post().to(publish),
        )
        .route("/editor/publications/issues/{id}/send", aw::post().to(send))
        .route(
            "/editor/publications/issues/{id}/items/new",
            aw::get().to(new_item_form),
        )
        .route(
            "/editor/publications/issues/{id}/items/new",
            aw::post().to(add_item),
        )
        .route(
            "/editor/publications/issues/{id}/items/{item}",
            aw::get().to(edit_item_form),
        )
        .route(
            "/editor/publications/issues/{id}/items/{item}",
            aw::post().to(edit_item),
        );
}

/// The address of an issue's editor page.
fn issue_href(id: i64) -> String {
    format!("/editor/publications/issues/{id}")
}

/// A notice named by `?done=` after a redirect.
fn notice(request: &HttpRequest, v: &Viewer) -> Option<String> {
    url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, d)| v.lang.t(&format!("done-issue-{d}")))
}

/// E-mail progress as the pages show it.
struct Progress {
    sent: String,
    sending: String,
    waiting: String,
    failed: String,
    skipped: String,
    paused: String,
    state: String,
    started: Option<String>,
    finished: Option<String>,
    /// A sender holds the issue now.
    running: bool,
    /// Every recipient has a final state.
    done: bool,
}

fn progress(v: &Viewer, p: &MailProgress) -> Progress {
    let state = p.run_state(db::now_ms());
    let key = match state {
        RunState::NotStarted => "mail-not-started",
        RunState::Sending => "mail-sending-now",
        RunState::Stopped => "mail-stopped",
        RunState::Finished => "mail-finished",
    };
    Progress {
        sent: v.lang.number(p.sent),
        sending: v.lang.number(p.sending),
        waiting: v.lang.number(p.waiting),
        failed: v.lang.number(p.failed),
        skipped: v.lang.number(p.skipped),
        paused: v.lang.number(p.paused),
        state: v.lang.t(key),
        started: p.started_at.map(|t| v.lang.date_time(t)),
        finished: p.finished_at.map(|t| v.lang.date_time(t)),
        running: state == RunState::Sending,
        done: state == RunState::Finished,
    }
}

struct IssueLine {
    href: String,
    title: String,
    language: String,
    state: String,
    items: usize,
    date: String,
    mail: Option<Progress>,
}

struct PublicationBlock {
    title: String,
    issues: Vec<IssueLine>,
}

#[derive(Template)]
#[template(path = "editor_publications.html")]
struct ListPage<'a> {
    v: &'a Viewer,
    title: String,
    notice: Option<String>,
    error: Option<String>,
    publications: Vec<PublicationBlock>,
    languages: Vec<Choice>,
    communique_languages: Vec<Choice>,
}

async fn list_page(
    v: &Viewer,
    data: &Data,
    status: u16,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, Error> {
    let loaded = data
        .db
        .run(|conn| {
            let mut out = Vec::new();
            for publication in publications::PUBLICATIONS.iter().map(|p| p.name) {
                let mut issues = Vec::new();
                for issue in rows::issues(conn, publication, 50)? {
                    let items = rows::items(conn, issue.id)?.len();
                    let mail = if issue.state == rows::PUBLISHED {
                        Some(rows::mail_progress(conn, issue.id)?)
                    } else {
                        None
                    };
                    issues.push((issue, items, mail));
                }
                out.push((publication, issues));
            }
            Ok(out)
        })
        .await?;
    let lang_choices = |codes: &[&str]| {
        choices(
            LANGS
                .iter()
                .filter(|(code, _)| codes.contains(code))
                .map(|(code, name)| (code.to_string(), name.to_string()))
                .collect(),
            &[v.lang.code().to_string()],
        )
    };
    let all: Vec<&str> = LANGS.iter().map(|(code, _)| *code).collect();
    let page = ListPage {
        title: v.lang.t("nav-publications"),
        notice,
        error,
        publications: loaded
            .into_iter()
            .map(|(publication, issues)| PublicationBlock {
                title: v.lang.t(&format!("publication-{publication}")),
                issues: issues
                    .into_iter()
                    .map(|(issue, items, mail)| IssueLine {
                        href: issue_href(issue.id),
                        state: v.lang.t(&format!("issue-state-{}", issue.state)),
                        date: v.lang.date(issue.published_at.unwrap_or(issue.updated_at)),
                        title: issue.title,
                        language: issue.language,
                        items,
                        mail: mail.map(|m| progress(v, &m)),
                    })
                    .collect(),
            })
            .collect(),
        languages: lang_choices(&all),
        communique_languages: lang_choices(&communique::LANGUAGES),
        v,
    };
    Ok(render(v, status, &page))
}

async fn list(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let notice = notice(&request, &v);
    list_page(&v, &data, 200, notice, None).await
}

async fn build_digest(
    request: HttpRequest,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let language = form.text("language");
    let days: Option<i64> = form.text("days").parse().ok();
    let Some(days) = days.filter(|d| (1..=366).contains(d)) else {
        let error = Some(v.lang.t("digest-days-invalid"));
        return list_page(&v, &data, 422, None, error).await;
    };
    if !crate::alerts::input::is_language_tag(&language) {
        let error = Some(v.lang.t("issue-language-invalid"));
        return list_page(&v, &data, 422, None, error).await;
    }
    let end = db::now_ms();
    let start = end - days * 86_400_000;
    let id = data
        .db
        .run(move |conn| publications::digest::build(conn, &language, start, end))
        .await?;
    Ok(see_other(&format!("{}?done=built", issue_href(id))))
}

async fn write_communique(
    request: HttpRequest,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let language = form.text("language");
    let title = form.text("title");
    if communique::check(&language, &[]).is_err() {
        let error = Some(v.lang.t("issue-language-invalid"));
        return list_page(&v, &data, 422, None, error).await;
    }
    if title.is_empty() {
        let error = Some(v.lang.t("issue-title-missing"));
        return list_page(&v, &data, 422, None, error).await;
    }
    let id = data
        .db
        .run(move |conn| communique::create(conn, &language, &title, db::now_ms(), &[]))
        .await?;
    Ok(see_other(&format!("{}?done=written", issue_href(id))))
}

/// An item in the editing table.
struct ItemLine {
    id: i64,
    heading: String,
    url: Option<String>,
    first: bool,
    last: bool,
}

/// A section in the editing table.
struct SectionLine {
    key: String,
    name: String,
    first: bool,
    last: bool,
    items: Vec<ItemLine>,
}

#[derive(Template)]
#[template(path = "editor_issue.html")]
struct IssuePage<'a> {
    v: &'a Viewer,
    title: String,
    notice: Option<String>,
    id: i64,
    publication_name: String,
    language: String,
    state: String,
    draft: bool,
    /// Items are written by editors (the Communiqué).
    written: bool,
    period: String,
    public_href: Option<String>,
    lines: Vec<SectionLine>,
    mail: Option<Progress>,
    mail_configured: bool,
    // The preview, with the names publication_issue_article.html uses.
    publication: String,
    publication_href: String,
    date: String,
    sections: Vec<Section>,
}

fn editing_lines(
    issue: &IssueRow,
    t: &crate::alerts::taxonomy::Taxonomy,
    items: &[ItemRow],
) -> Vec<SectionLine> {
    let grouped = sections(issue, items.to_vec(), t);
    let count = grouped.len();
    grouped
        .into_iter()
        .enumerate()
        .map(|(n, s)| {
            let last_item = s.items.len().saturating_sub(1);
            SectionLine {
                name: s.name,
                first: n == 0,
                last: n + 1 == count,
                items: s
                    .items
                    .into_iter()
                    .enumerate()
                    .map(|(k, i)| ItemLine {
                        id: i.id,
                        heading: i.heading,
                        url: i.url,
                        first: k == 0,
                        last: k == last_item,
                    })
                    .collect(),
                key: s.key,
            }
        })
        .collect()
}

async fn load(data: &Data, id: i64) -> Result<(IssueRow, Vec<ItemRow>, MailProgress), Error> {
    Ok(data
        .db
        .run(move |conn| {
            Ok((
                rows::issue(conn, id)?,
                rows::items(conn, id)?,
                rows::mail_progress(conn, id)?,
            ))
        })
        .await?)
}

async fn issue_page(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let notice = notice(&request, &v);
    let (issue, items, mail) = load(&data, path.into_inner()).await?;
    let t = taxonomy(&data)?;
    let published = issue.state == rows::PUBLISHED;
    let page = IssuePage {
        title: issue.title.clone(),
        notice,
        id: issue.id,
        publication_name: v.lang.t(&format!("publication-{}", issue.publication)),
        language: issue.language.clone(),
        state: v.lang.t(&format!("issue-state-{}", issue.state)),
        draft: issue.state == rows::DRAFT,
        written: issue.publication == publications::COMMUNIQUE,
        period: format!(
            "{} – {}",
            v.lang.date_time(issue.period_start),
            v.lang.date_time(issue.period_end)
        ),
        public_href: issue.ap_id.clone().filter(|_| published),
        lines: editing_lines(&issue, &t, &items),
        mail: published.then(|| progress(&v, &mail)),
        mail_configured: !data.config.mail.smtp_host.is_empty(),
        publication: v.lang.t(&format!("publication-{}", issue.publication)),
        publication_href: format!("/publications/{}", issue.publication),
        date: v.lang.date(issue.published_at.unwrap_or_else(db::now_ms)),
        sections: sections(&issue, items, &t),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

/// Runs an edit of a draft for a form; a refusal (published meanwhile, an
/// item that is gone) is shown on the issue's page as a notice.
async fn edit_draft<F>(data: &Data, id: i64, done: &str, action: F) -> Result<HttpResponse, Error>
where
    F: FnOnce(&mut db::DbConn) -> Result<(), EditError> + Send + 'static,
{
    match data.db.run(move |conn| Ok(action(conn))).await? {
        Ok(()) => Ok(see_other(&format!("{}?done={done}", issue_href(id)))),
        Err(EditError::Published(_)) => Ok(see_other(&format!(
            "{}?done=refused-published",
            issue_href(id)
        ))),
        Err(EditError::Db(e)) => Err(Error::Db(e)),
        Err(EditError::NoItem(_) | EditError::BadOrder | EditError::NotWritten(_)) => {
            Ok(see_other(&format!("{}?done=refused-stale", issue_href(id))))
        }
    }
}

async fn move_up_down(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let id = path.into_inner();
    let up = form.text("direction") == "up";
    let item: Option<i64> = form.get("item").and_then(|i| i.parse().ok());
    let section = form.get("section");
    edit_draft(&data, id, "moved", move |conn| {
        let current = rows::items(conn, id)?;
        let now: Vec<(i64, &str)> = current.iter().map(|i| (i.id, i.section.as_str())).collect();
        let wanted = match (item, &section) {
            (Some(item), _) => order::move_item(&now, item, up),
            (None, Some(section)) => order::move_section(&now, section, up),
            (None, None) => None,
        };
        // Already first or last: nothing to do, and nothing wrong.
        match wanted {
            Some(new_order) => rows::reorder(conn, id, &new_order),
            None => Ok(()),
        }
    })
    .await
}

async fn remove(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let id = path.into_inner();
    let item: i64 = form.text("item").parse().map_err(|_| Error::NotFound)?;
    edit_draft(&data, id, "removed", move |conn| {
        rows::trim(conn, id, &[item]).map(|_| ())
    })
    .await
}

#[derive(Template)]
#[template(path = "editor_confirm.html")]
struct ConfirmPage<'a> {
    v: &'a Viewer,
    title: String,
    text: String,
    action: String,
    button: String,
    back: String,
}

async fn confirm_publish(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let (issue, items, _) = load(&data, path.into_inner()).await?;
    if issue.state != rows::DRAFT {
        return Ok(see_other(&format!(
            "{}?done=refused-published",
            issue_href(issue.id)
        )));
    }
    let page = ConfirmPage {
        title: v
            .lang
            .t_args("publish-confirm-title", &[("title", issue.title.clone())]),
        text: v.lang.t_args(
            "publish-confirm-text",
            &[("items", v.lang.number(items.len() as i64))],
        ),
        action: format!("{}/publish", issue_href(issue.id)),
        button: v.lang.t("publish-issue"),
        back: issue_href(issue.id),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

async fn publish(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let id = path.into_inner();
    if form.get("confirm").as_deref() != Some("yes") {
        return Ok(see_other(&format!("{}/publish", issue_href(id))));
    }
    let base = data.config.base_url();
    let t = taxonomy(&data)?;
    // Exactly what the API's publish does: publications::publish owns
    // what publishing means.
    match data
        .db
        .run(move |conn| Ok(publications::publish(conn, &base, &t, id)))
        .await?
    {
        Ok(_) => Ok(see_other(&format!("{}?done=published", issue_href(id)))),
        Err(EditError::Published(_)) => Ok(see_other(&format!(
            "{}?done=refused-published",
            issue_href(id)
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn send(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let id = path.into_inner();
    let (issue, _, mail) = load(&data, id).await?;
    let back = |done: &str| Ok(see_other(&format!("{}?done={done}", issue_href(id))));
    if issue.state != rows::PUBLISHED {
        return back("send-draft");
    }
    match mail.run_state(db::now_ms()) {
        RunState::Sending => return back("send-busy"),
        RunState::Finished => return back("send-finished"),
        RunState::NotStarted | RunState::Stopped => {}
    }
    let Ok(mailer) = Mailer::from_config(&data.config) else {
        return back("send-no-mail");
    };
    let t = taxonomy(&data)?;
    // Two clicks may both get here: the run's lease in mail_runs lets
    // one of them send and refuses the other, as it refuses a second
    // `tocsin digest send`.
    drop(start_in_background(
        data.db.clone(),
        mailer,
        t,
        id,
        Pace::from_config(&data.config.mail),
    ));
    tracing::info!(issue = id, "sending started from the web");
    back("send-started")
}

#[derive(Template)]
#[template(path = "editor_issue_item.html")]
struct ItemPage<'a> {
    v: &'a Viewer,
    title: String,
    error: Option<String>,
    action: String,
    back: String,
    sections: Vec<Choice>,
    heading: String,
    body: String,
    url: String,
}

fn item_page(
    v: &Viewer,
    status: u16,
    id: i64,
    editing: Option<i64>,
    item: &WrittenItem,
    error: Option<String>,
) -> HttpResponse {
    let page = ItemPage {
        title: v.lang.t(if editing.is_some() {
            "edit-item"
        } else {
            "new-item"
        }),
        error,
        action: match editing {
            Some(item) => format!("{}/items/{item}", issue_href(id)),
            None => format!("{}/items/new", issue_href(id)),
        },
        back: issue_href(id),
        sections: choices(
            communique::SECTIONS
                .iter()
                .map(|s| (s.to_string(), v.lang.t(&format!("section-{s}"))))
                .collect(),
            std::slice::from_ref(&item.section),
        ),
        heading: item.heading.clone(),
        body: item.body_markdown.clone(),
        url: item.url.clone().unwrap_or_default(),
        v,
    };
    render(v, status, &page)
}

/// The item of a submitted form.
fn form_item(form: &Form) -> WrittenItem {
    WrittenItem {
        section: form.text("section"),
        heading: form.text("heading"),
        body_markdown: form.raw("body").replace("\r\n", "\n"),
        url: form.get("url"),
    }
}

/// An editable draft Communiqué, or the redirect explaining why not.
async fn writable(data: &Data, id: i64) -> Result<Result<Vec<ItemRow>, HttpResponse>, Error> {
    let (issue, items, _) = load(data, id).await?;
    if issue.publication != publications::COMMUNIQUE {
        return Err(Error::NotFound);
    }
    if issue.state != rows::DRAFT {
        return Ok(Err(see_other(&format!(
            "{}?done=refused-published",
            issue_href(id)
        ))));
    }
    Ok(Ok(items))
}

async fn new_item_form(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let id = path.into_inner();
    allowed!(writable(&data, id).await?);
    let item = WrittenItem {
        section: communique::SECTIONS[0].to_string(),
        heading: String::new(),
        body_markdown: String::new(),
        url: None,
    };
    Ok(item_page(&v, 200, id, None, &item, None))
}

async fn edit_item_form(
    request: HttpRequest,
    path: aw::Path<(i64, i64)>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let (id, item_id) = path.into_inner();
    let items = allowed!(writable(&data, id).await?);
    let row = items
        .into_iter()
        .find(|i| i.id == item_id)
        .ok_or(Error::NotFound)?;
    let item = WrittenItem {
        section: row.section,
        heading: row.heading,
        body_markdown: row.body_markdown.unwrap_or_default(),
        url: row.url,
    };
    Ok(item_page(&v, 200, id, Some(item_id), &item, None))
}

/// The form again with what is wrong, if the submitted item is invalid.
fn invalid(v: &Viewer, id: i64, editing: Option<i64>, item: &WrittenItem) -> Option<HttpResponse> {
    let (field, _) = communique::check_item(item).err()?;
    let error = Some(v.lang.t(&format!("item-invalid-{field}")));
    Some(item_page(v, 422, id, editing, item, error))
}

async fn add_item(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let id = path.into_inner();
    let item = form_item(&form);
    if let Some(page) = invalid(&v, id, None, &item) {
        return Ok(page);
    }
    edit_draft(&data, id, "item-added", move |conn| {
        communique::add_item(conn, id, &item).map(|_| ())
    })
    .await
}

async fn edit_item(
    request: HttpRequest,
    path: aw::Path<(i64, i64)>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let (id, item_id) = path.into_inner();
    let item = form_item(&form);
    if let Some(page) = invalid(&v, id, Some(item_id), &item) {
        return Ok(page);
    }
    edit_draft(&data, id, "item-saved", move |conn| {
        communique::edit_item(conn, id, item_id, &item)
    })
    .await
}
