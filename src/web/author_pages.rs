//! Pages for authors: their alerts, writing and editing with preview,
//! translations side by side, attachments, drafts, publishing, deleting,
//! and where an alert went. Built on crate::alerts::publish.

use crate::{
    accounts::AUTHOR,
    alerts::{
        input::{AlertInput, AlertPatch, AttachmentInput},
        markdown,
        publish::{self, TranslationInput},
        STATUS_DRAFT, STATUS_PUBLISHED, URGENCIES,
    },
    db::{self, alerts::AlertRow},
    error::Error,
    federation::{activities::follow::local_actor, objects::actor::DbActor},
    state::Data,
    web::{
        media,
        pages::{choices, message, render, taxonomy, taxonomy_choices, Choice, TaxonomyChoices},
        session::{csrf_ok, require, require_post, see_other, Form, Viewer},
    },
};
use actix_multipart::Multipart;
use actix_web::{web as aw, HttpRequest, HttpResponse};
use askama::Template;
use futures::TryStreamExt;

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig, max_upload: usize) {
    cfg.service(
        aw::scope("/author")
            .app_data(aw::PayloadConfig::new(max_upload + 1_000_000))
            .route("", aw::get().to(list))
            .route("/new", aw::get().to(new_form))
            .route("/new", aw::post().to(create))
            .route("/alerts/{id}", aw::get().to(edit_form))
            .route("/alerts/{id}", aw::post().to(edit))
            .route("/alerts/{id}/delete", aw::post().to(delete))
            .route("/alerts/{id}/translate", aw::get().to(translate_form))
            .route("/alerts/{id}/translate", aw::post().to(translate))
            .route("/alerts/{id}/deliveries", aw::get().to(deliveries)),
    );
}

macro_rules! allowed {
    ($e:expr) => {
        match $e {
            Ok(x) => x,
            Err(resp) => return Ok(resp),
        }
    };
}
pub(crate) use allowed;

struct Row {
    id: i64,
    title: String,
    href: String,
    status: String,
    published: bool,
    original: bool,
    language: String,
    languages: String,
}

#[derive(Template)]
#[template(path = "author_list.html")]
struct ListPage<'a> {
    v: &'a Viewer,
    title: String,
    notice: Option<String>,
    rows: Vec<Row>,
}

async fn list(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, AUTHOR).await?);
    let filter = db::alerts::AlertFilter {
        local: Some(true),
        include_drafts: true,
        ..Default::default()
    };
    let rows = data
        .db
        .run(move |conn| db::alerts::list(conn, &filter, 200, 0))
        .await?;
    let mut out = vec![];
    for r in rows.iter().filter(|r| r.translation_of.is_none()) {
        let group = r.id;
        let versions = data
            .db
            .run(move |conn| db::alerts::versions(conn, group))
            .await?;
        out.push(Row {
            id: r.id,
            title: r.title.clone(),
            href: r.url.clone().unwrap_or(r.ap_id.clone()),
            status: v.lang.t(&format!("status-{}", r.status)),
            published: r.status == STATUS_PUBLISHED,
            original: true,
            language: r.language.clone(),
            languages: versions
                .iter()
                .filter(|x| x.status != crate::alerts::STATUS_DELETED)
                .map(|x| x.language.clone())
                .collect::<Vec<_>>()
                .join(", "),
        });
        for t in versions
            .iter()
            .filter(|x| x.id != r.id && x.status != crate::alerts::STATUS_DELETED)
        {
            out.push(Row {
                id: t.id,
                title: t.title.clone(),
                href: t.url.clone().unwrap_or(t.ap_id.clone()),
                status: v.lang.t(&format!("status-{}", t.status)),
                published: t.status == STATUS_PUBLISHED,
                original: false,
                language: t.language.clone(),
                languages: format!("↳ {}", t.language),
            });
        }
    }
    let notice = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, d)| v.lang.t(&format!("done-{d}")));
    let page = ListPage {
        title: v.lang.t("my-alerts"),
        notice,
        rows: out,
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

/// The editable fields, as the form shows them.
#[derive(Default)]
struct Fields {
    title: String,
    body: String,
    language: String,
    content_warning: String,
    incident_date: String,
    attachments: String,
}

#[derive(Template)]
#[template(path = "author_edit.html")]
struct EditPage<'a> {
    v: &'a Viewer,
    title: String,
    action: String,
    id: Option<i64>,
    published: bool,
    error: Option<String>,
    preview: Option<String>,
    f: Fields,
    tc: TaxonomyChoices,
    urgencies: Vec<Choice>,
}

struct Draft {
    fields: Fields,
    countries: Vec<String>,
    categories: Vec<String>,
    urgency: String,
}

impl Draft {
    fn of_row(row: &AlertRow, attachments: &[AttachmentInput]) -> Draft {
        Draft {
            fields: Fields {
                title: row.title.clone(),
                body: row.source_markdown.clone().unwrap_or_default(),
                language: row.language.clone(),
                content_warning: row.summary.clone().unwrap_or_default(),
                incident_date: row.incident_date.clone().unwrap_or_default(),
                attachments: attachment_lines(attachments),
            },
            countries: row.country_list(),
            categories: row.category_list(),
            urgency: row.urgency.clone(),
        }
    }

    fn of_form(form: &Form) -> Draft {
        Draft {
            fields: Fields {
                title: form.text("title"),
                body: form.raw("body"),
                language: form.text("language"),
                content_warning: form.text("content_warning"),
                incident_date: form.text("incident_date"),
                attachments: form.raw("attachments"),
            },
            countries: form.all("countries"),
            categories: form.all("categories"),
            urgency: form.text("urgency"),
        }
    }

    fn input(&self, status: &str) -> AlertInput {
        AlertInput {
            title: self.fields.title.clone(),
            body: self.fields.body.clone(),
            language: self.fields.language.clone(),
            countries: self.countries.clone(),
            categories: self.categories.clone(),
            urgency: self.urgency.clone(),
            incident_date: Some(self.fields.incident_date.clone()).filter(|d| !d.is_empty()),
            case: None,
            content_warning: Some(self.fields.content_warning.clone()).filter(|c| !c.is_empty()),
            attachments: parse_attachments(&self.fields.attachments),
            status: Some(status.to_string()),
            campaigns: vec![],
        }
    }
}

/// One attachment a line: the URL, a space, the description.
fn attachment_lines(items: &[AttachmentInput]) -> String {
    items
        .iter()
        .map(|a| match &a.description {
            Some(d) => format!("{} {d}", a.url),
            None => a.url.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_attachments(text: &str) -> Vec<AttachmentInput> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (url, description) = match l.split_once(char::is_whitespace) {
                Some((u, d)) => (u.to_string(), Some(d.trim().to_string())),
                None => (l.to_string(), None),
            };
            AttachmentInput {
                url,
                media_type: None,
                description,
            }
        })
        .collect()
}

fn edit_page(
    v: &Viewer,
    data: &Data,
    status: u16,
    existing: Option<(i64, bool)>,
    draft: Draft,
    error: Option<String>,
    preview: bool,
) -> Result<HttpResponse, Error> {
    let t = taxonomy(data)?;
    let (id, published) = match existing {
        Some((id, published)) => (Some(id), published),
        None => (None, false),
    };
    let page = EditPage {
        title: v.lang.t(if id.is_some() {
            "edit-alert"
        } else {
            "new-alert"
        }),
        action: id.map_or("/author/new".to_string(), |i| format!("/author/alerts/{i}")),
        id,
        published,
        error,
        preview: preview.then(|| markdown::render(&draft.fields.body)),
        tc: taxonomy_choices(&t, &[], &draft.countries, &draft.categories),
        urgencies: choices(
            URGENCIES
                .iter()
                .map(|u| (u.to_string(), v.lang.t(&format!("urgency-{u}"))))
                .collect(),
            std::slice::from_ref(&draft.urgency),
        ),
        f: draft.fields,
        v,
    };
    Ok(render(v, status, &page))
}

async fn new_form(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, AUTHOR).await?);
    let draft = Draft {
        fields: Fields {
            language: v.lang.code().to_string(),
            ..Default::default()
        },
        countries: vec![],
        categories: vec![],
        urgency: "action".into(),
    };
    edit_page(&v, &data, 200, None, draft, None, false)
}

/// Reads a multipart form: its text fields, and a file in `file` (stored
/// with the media upload code and added to the attachments).
async fn read_multipart(
    data: &Data,
    mut payload: Multipart,
) -> Result<(Form, Option<Vec<u8>>), Error> {
    let mut fields = vec![];
    let mut file = None;
    let limit = data.config.alerts.max_upload_bytes;
    let bad = |e: actix_multipart::MultipartError| Error::BadRequest(format!("form: {e}"));
    while let Some(mut field) = payload.try_next().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let mut bytes = vec![];
        while let Some(chunk) = field.try_next().await.map_err(bad)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > limit {
                return Err(Error::PayloadTooLarge(limit));
            }
        }
        if name == "file" {
            file = Some(bytes).filter(|b| !b.is_empty());
        } else {
            fields.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    Ok((Form(fields), file))
}

/// The form of a create or edit POST, with an uploaded file added.
async fn alert_form(
    data: &Data,
    mut form: Form,
    file: Option<Vec<u8>>,
) -> Result<(Form, Option<String>), Error> {
    if let Some(bytes) = file {
        match media::store(data, bytes).await {
            Ok(up) => {
                let mut lines = form.raw("attachments");
                if !lines.trim().is_empty() {
                    lines.push('\n');
                }
                lines.push_str(&up.url);
                if let Some(d) = form.get("file_description") {
                    lines.push(' ');
                    lines.push_str(&d);
                }
                form.0.retain(|(k, _)| k != "attachments");
                form.0.push(("attachments".into(), lines));
            }
            Err(Error::Validation { message, .. }) => return Ok((form, Some(message))),
            Err(e) => return Err(e),
        }
    }
    Ok((form, None))
}

/// The alert form of a POST: the role is checked before the body is read,
/// the CSRF token after; an upload that is refused comes back as a message.
async fn posted_alert_form(
    request: &HttpRequest,
    payload: aw::Payload,
    data: &Data,
) -> Result<Result<(Viewer, Form, Option<String>), HttpResponse>, Error> {
    let v = match require(request, data, AUTHOR).await? {
        Ok(v) => v,
        Err(resp) => return Ok(Err(resp)),
    };
    let (form, file) = read_multipart(data, Multipart::new(request.headers(), payload)).await?;
    if !csrf_ok(&v, &form) {
        return Ok(Err(message(&v, 403, "csrf-title", "csrf-text")));
    }
    // Only now is an uploaded file stored.
    let (form, upload_error) = alert_form(data, form, file).await?;
    Ok(Ok((v, form, upload_error)))
}

/// The message of a validation error, `field: message`.
pub(crate) fn error_text(e: &Error) -> Option<String> {
    match e {
        Error::Validation { field, message } => Some(format!("{field}: {message}")),
        _ => None,
    }
}

async fn org(data: &Data) -> Result<DbActor, Error> {
    local_actor(data, &data.config.actor.username).await
}

async fn create(
    request: HttpRequest,
    payload: aw::Payload,
    data: Data,
) -> Result<HttpResponse, Error> {
    let (v, form, upload_error) = allowed!(posted_alert_form(&request, payload, &data).await?);
    let draft = Draft::of_form(&form);
    let action = form.text("do");
    if upload_error.is_some() || action == "preview" {
        let status = if upload_error.is_some() { 422 } else { 200 };
        return edit_page(&v, &data, status, None, draft, upload_error, true);
    }
    let status = if action == "draft" {
        STATUS_DRAFT
    } else {
        STATUS_PUBLISHED
    };
    let actor = org(&data).await?;
    match publish::create_alert(&data, &actor, draft.input(status), None).await {
        Ok(_) => Ok(see_other(&format!("/author?done={status}"))),
        Err(e) => match error_text(&e) {
            Some(msg) => edit_page(&v, &data, 422, None, draft, Some(msg), false),
            None => Err(e),
        },
    }
}

/// A local alert (not deleted) by id.
async fn load(data: &Data, id: i64) -> Result<AlertRow, Error> {
    let row = data.db.run(move |conn| db::alerts::by_id(conn, id)).await?;
    if !row.local || row.status == crate::alerts::STATUS_DELETED {
        return Err(Error::NotFound);
    }
    Ok(row)
}

async fn attachments_of(data: &Data, id: i64) -> Result<Vec<AttachmentInput>, Error> {
    Ok(data
        .db
        .run(move |conn| db::alerts::attachments(conn, id))
        .await?
        .into_iter()
        .map(|a| AttachmentInput {
            url: a.url,
            media_type: a.media_type,
            description: a.description,
        })
        .collect())
}

async fn edit_form(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, AUTHOR).await?);
    let row = load(&data, path.into_inner()).await?;
    let draft = Draft::of_row(&row, &attachments_of(&data, row.id).await?);
    let published = row.status == STATUS_PUBLISHED;
    edit_page(
        &v,
        &data,
        200,
        Some((row.id, published)),
        draft,
        None,
        false,
    )
}

async fn edit(
    request: HttpRequest,
    path: aw::Path<i64>,
    payload: aw::Payload,
    data: Data,
) -> Result<HttpResponse, Error> {
    let (v, form, upload_error) = allowed!(posted_alert_form(&request, payload, &data).await?);
    let row = load(&data, path.into_inner()).await?;
    let published = row.status == STATUS_PUBLISHED;
    let draft = Draft::of_form(&form);
    let action = form.text("do");
    if upload_error.is_some() || action == "preview" {
        let status = if upload_error.is_some() { 422 } else { 200 };
        return edit_page(
            &v,
            &data,
            status,
            Some((row.id, published)),
            draft,
            upload_error,
            true,
        );
    }
    let status = if action == "draft" {
        STATUS_DRAFT
    } else {
        STATUS_PUBLISHED
    };
    let input = draft.input(status);
    let patch = AlertPatch {
        title: Some(input.title),
        body: Some(input.body),
        language: Some(input.language),
        countries: Some(input.countries),
        categories: Some(input.categories),
        urgency: Some(input.urgency),
        incident_date: Some(input.incident_date),
        case: None,
        content_warning: Some(input.content_warning),
        attachments: Some(input.attachments),
        status: input.status,
        campaigns: None,
    };
    let actor = org(&data).await?;
    match publish::update_alert(&data, &actor, &row, patch).await {
        Ok(_) => Ok(see_other("/author?done=saved")),
        Err(e) => match error_text(&e) {
            Some(msg) => edit_page(
                &v,
                &data,
                422,
                Some((row.id, published)),
                draft,
                Some(msg),
                false,
            ),
            None => Err(e),
        },
    }
}

async fn delete(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    allowed!(require_post(&request, &data, AUTHOR, &Form::parse(&body)).await?);
    let row = load(&data, path.into_inner()).await?;
    publish::delete_alert(&data, &org(&data).await?, &row).await?;
    Ok(see_other("/author?done=deleted"))
}

#[derive(Template)]
#[template(path = "author_translate.html")]
struct TranslatePage<'a> {
    v: &'a Viewer,
    title: String,
    id: i64,
    error: Option<String>,
    original_language: String,
    original_title: String,
    original_html: String,
    existing: String,
    f: Fields,
}

async fn translate_page(
    v: &Viewer,
    data: &Data,
    original: &AlertRow,
    status: u16,
    f: Fields,
    error: Option<String>,
) -> Result<HttpResponse, Error> {
    let group = original.id;
    let versions = data
        .db
        .run(move |conn| db::alerts::versions(conn, group))
        .await?;
    let page = TranslatePage {
        title: v.lang.t("add-translation"),
        id: original.id,
        error,
        original_language: original.language.clone(),
        original_title: original.title.clone(),
        original_html: crate::alerts::markdown::sanitize(&original.content_html),
        existing: versions
            .iter()
            .filter(|x| x.id != original.id && x.status != crate::alerts::STATUS_DELETED)
            .map(|x| x.language.clone())
            .collect::<Vec<_>>()
            .join(", "),
        f,
        v,
    };
    Ok(render(v, status, &page))
}

async fn translate_form(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, AUTHOR).await?);
    let row = load(&data, path.into_inner()).await?;
    translate_page(&v, &data, &row, 200, Fields::default(), None).await
}

async fn translate(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, AUTHOR, &form).await?);
    let row = load(&data, path.into_inner()).await?;
    let f = Draft::of_form(&form).fields;
    let t = TranslationInput {
        language: f.language.clone(),
        title: f.title.clone(),
        body: f.body.clone(),
        content_warning: Some(f.content_warning.clone()).filter(|c| !c.is_empty()),
    };
    match publish::add_translation(&data, &org(&data).await?, &row, t).await {
        Ok(_) => Ok(see_other("/author?done=translated")),
        Err(e) => match error_text(&e) {
            Some(msg) => translate_page(&v, &data, &row, 422, f, Some(msg)).await,
            None => Err(e),
        },
    }
}

/// One receiving server of an alert.
struct HostLine {
    host: String,
    done: String,
    pending: String,
    failing: String,
    last_error: String,
    when: String,
}

#[derive(Template)]
#[template(path = "author_deliveries.html")]
struct DeliveriesPage<'a> {
    v: &'a Viewer,
    title: String,
    alert_title: String,
    href: String,
    done: String,
    pending: String,
    failed: String,
    hosts: Vec<HostLine>,
}

/// Delivered, waiting (not yet tried or not yet failed), or failing
/// (retrying after an error, or given up).
fn bucket(row: &db::deliveries::DeliveryRow) -> usize {
    match row.state.as_str() {
        db::deliveries::DONE => 0,
        db::deliveries::PENDING if row.last_error.is_none() && row.last_status.is_none() => 1,
        _ => 2,
    }
}

async fn deliveries(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, AUTHOR).await?);
    let row = load(&data, path.into_inner()).await?;
    let ap_id = row.ap_id.clone();
    let rows = data
        .db
        .run(move |conn| db::deliveries::latest_for_object(conn, &ap_id))
        .await?;
    let mut totals = [0i64; 3];
    let mut by_host: std::collections::BTreeMap<
        &str,
        ([i64; 3], Option<&db::deliveries::DeliveryRow>),
    > = Default::default();
    for r in &rows {
        let b = bucket(r);
        totals[b] += 1;
        let entry = by_host.entry(r.host.as_str()).or_default();
        entry.0[b] += 1;
        if b == 2 && entry.1.is_none_or(|e| e.updated_at < r.updated_at) {
            entry.1 = Some(r);
        }
    }
    let mut hosts: Vec<_> = by_host.into_iter().collect();
    // Failing servers first, then by name.
    hosts.sort_by_key(|(host, (counts, _))| (-counts[2], host.to_string()));
    let page = DeliveriesPage {
        title: v.lang.t("deliveries"),
        alert_title: row.title.clone(),
        href: row.url.clone().unwrap_or(row.ap_id.clone()),
        done: v.lang.number(totals[0]),
        pending: v.lang.number(totals[1]),
        failed: v.lang.number(totals[2]),
        hosts: hosts
            .into_iter()
            .map(|(host, (counts, failing))| HostLine {
                host: host.to_string(),
                done: v.lang.number(counts[0]),
                pending: v.lang.number(counts[1]),
                failing: v.lang.number(counts[2]),
                last_error: failing
                    .map(|f| {
                        let status = f.last_status.map(|s| format!("HTTP {s}"));
                        [status, f.last_error.clone()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" · ")
                    })
                    .unwrap_or_default(),
                when: failing
                    .map(|f| v.lang.date_time(f.updated_at))
                    .unwrap_or_default(),
            })
            .collect(),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}
