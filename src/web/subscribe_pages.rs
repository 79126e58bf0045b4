//! E-mail subscription pages: the sign-up form (double opt-in), the
//! confirmation link, the preferences page and one-click unsubscribe
//! (RFC 8058).
//!
//! The sign-up form carries a CSRF token in a cookie and a hidden field
//! (there is no session). The other pages are reached through the
//! subscriber's secret token in the URL, which a forged cross-site request
//! cannot know, so they need no other check; the unsubscribe URL answers a
//! bare POST as RFC 8058 requires.

use crate::{
    accounts,
    db::{
        publications::{SUB_CONFIRMED, SUB_PAUSED, SUB_PENDING, SUB_UNSUBSCRIBED},
        subscribers::{self, Choices, SignUp, SubscriberRow},
        DbConn, DbError,
    },
    error::Error,
    mail::{import::check_choices, message, templates, MailError, Mailer},
    publications::{DIGEST, PUBLICATIONS},
    state::Data,
    web::{
        i18n::LANGS,
        pages::{choices, message as message_page, message_text, render, taxonomy, Choice},
        session::{viewer, Form, Viewer},
    },
};
use actix_web::{cookie::Cookie, web as aw, HttpRequest, HttpResponse};
use askama::Template;

/// Cookie holding the sign-up form's CSRF token (double submit).
const SUBSCRIBE_CSRF_COOKIE: &str = "tocsin_subscribe_csrf";

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/subscribe", aw::get().to(sign_up_form))
        .route("/subscribe", aw::post().to(sign_up))
        .route(
            "/subscribe/confirm/{token}",
            aw::get().to(|r, p: aw::Path<String>, d| ask(r, p.into_inner(), d, ASK_CONFIRM)),
        )
        .route("/subscribe/confirm/{token}", aw::post().to(confirm))
        .route("/subscribe/preferences/{token}", aw::get().to(preferences))
        .route(
            "/subscribe/preferences/{token}",
            aw::post().to(save_preferences),
        )
        .route(
            "/unsubscribe/{token}",
            aw::get().to(|r, p: aw::Path<String>, d| ask(r, p.into_inner(), d, ASK_UNSUBSCRIBE)),
        )
        .route("/unsubscribe/{token}", aw::post().to(unsubscribe));
}

#[derive(Template)]
#[template(path = "subscribe.html")]
struct SubscribePage<'a> {
    v: &'a Viewer,
    title: String,
    intro: Option<String>,
    error: Option<String>,
    notice: Option<String>,
    action: String,
    csrf: String,
    ask_email: bool,
    email: String,
    publications: Vec<Choice>,
    languages: Vec<Choice>,
    regions: Vec<Choice>,
    button: String,
    unsubscribe: Option<String>,
}

#[derive(Template)]
#[template(path = "button_page.html")]
struct ButtonPage<'a> {
    v: &'a Viewer,
    title: String,
    text: String,
    action: String,
    button: String,
}

/// The choices of a submitted form.
fn form_choices(form: &Form) -> Choices {
    Choices {
        publications: form.all("publications"),
        languages: form.all("languages"),
        regions: form.all("regions"),
    }
}

/// The form's fields: email (sign-up only), then the choices.
struct FormState<'a> {
    title_key: &'a str,
    action: String,
    csrf: String,
    email: Option<String>,
    choices: &'a Choices,
    error: Option<String>,
    notice: Option<String>,
    unsubscribe: Option<String>,
}

fn form_page(
    v: &Viewer,
    data: &Data,
    status: u16,
    s: FormState<'_>,
) -> Result<HttpResponse, Error> {
    let t = taxonomy(data)?;
    let publications = PUBLICATIONS
        .iter()
        .map(|p| (p.name.to_string(), v.lang.t(p.message_key)))
        .collect();
    let languages = LANGS
        .iter()
        .map(|(code, name)| (code.to_string(), name.to_string()))
        .collect();
    let regions = t
        .regions
        .iter()
        .map(|(k, r)| (k.clone(), r.name.clone()))
        .collect();
    let sign_up = s.email.is_some();
    Ok(render(
        v,
        status,
        &SubscribePage {
            v,
            title: v.lang.t(s.title_key),
            intro: sign_up.then(|| v.lang.t("subscribe-intro")),
            error: s.error,
            notice: s.notice,
            action: s.action,
            csrf: s.csrf,
            ask_email: sign_up,
            email: s.email.unwrap_or_default(),
            publications: choices(publications, &s.choices.publications),
            languages: choices(languages, &s.choices.languages),
            regions: choices(regions, &s.choices.regions),
            button: v.lang.t(if sign_up {
                "subscribe-button"
            } else {
                "preferences-save"
            }),
            unsubscribe: s.unsubscribe,
        },
    ))
}

/// The sign-up form with a fresh CSRF cookie.
fn sign_up_page(
    v: &Viewer,
    data: &Data,
    status: u16,
    email: String,
    choices: &Choices,
    error: Option<String>,
) -> Result<HttpResponse, Error> {
    let csrf = accounts::random_token();
    let mut resp = form_page(
        v,
        data,
        status,
        FormState {
            title_key: "subscribe-title",
            action: "/subscribe".into(),
            csrf: csrf.clone(),
            email: Some(email),
            choices,
            error,
            notice: None,
            unsubscribe: None,
        },
    )?;
    let _ = resp.add_cookie(&v.cookie(SUBSCRIBE_CSRF_COOKIE, csrf));
    Ok(resp)
}

async fn sign_up_form(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    if data.config.mail.smtp_host.is_empty() {
        return Ok(message_page(
            &v,
            503,
            "subscribe-title",
            "subscribe-disabled",
        ));
    }
    let defaults = Choices {
        publications: vec![DIGEST.to_string()],
        languages: vec![v.lang.code().to_string()],
        regions: Vec::new(),
    };
    sign_up_page(&v, &data, 200, String::new(), &defaults, None)
}

/// Sends a message about the subscription (no list headers).
async fn send_notice(
    mailer: &Mailer,
    to: &str,
    content: message::Content,
) -> Result<(), MailError> {
    let m = message::build(mailer, to, content, None, None)?;
    mailer.send(m).await
}

async fn sign_up(request: HttpRequest, body: aw::Bytes, data: Data) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    let form = Form::parse(&body);
    let cookie_token = request
        .cookie(SUBSCRIBE_CSRF_COOKIE)
        .map(|c| c.value().to_string());
    if cookie_token.is_none() || form.get("csrf") != cookie_token {
        return Ok(message_page(&v, 403, "csrf-title", "csrf-text"));
    }
    let Ok(mailer) = Mailer::from_config(&data.config) else {
        return Ok(message_page(
            &v,
            503,
            "subscribe-title",
            "subscribe-disabled",
        ));
    };
    let email = subscribers::normalise(&form.text("email"));
    let choices = form_choices(&form);
    let invalid = email.parse::<lettre::Address>().is_err()
        || check_choices(&choices, &taxonomy(&data)?).is_some();
    if invalid {
        let error = Some(v.lang.t("subscribe-invalid"));
        return sign_up_page(&v, &data, 422, email, &choices, error);
    }
    let stored = email.clone();
    let outcome = data
        .db
        .run(move |conn| subscribers::sign_up(conn, &stored, &choices))
        .await?;
    let (row, content) = match outcome {
        SignUp::Confirm(row) => {
            let c = templates::confirmation(&mailer, v.lang, &row.token);
            (row, c)
        }
        SignUp::Known(row) => {
            let c = templates::already_subscribed(&mailer, v.lang, &row.token);
            (row, c)
        }
    };
    // At most one message an hour to an address, whoever fills in the
    // form: the answer is the same either way, so the form still does not
    // tell what it did.
    let (id, previous, now) = (row.id, row.notice_sent_at, crate::db::now_ms());
    let slot = data
        .db
        .run(move |conn| subscribers::take_notice_slot(conn, id, now))
        .await?;
    if slot {
        let sent = match content {
            Ok(content) => send_notice(&mailer, &email, content).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::warn!(subscriber = id, error = %e, "sign-up message not sent");
            data.db
                .run(move |conn| subscribers::release_notice_slot(conn, id, now, previous))
                .await?;
            return Ok(message_page(&v, 503, "subscribe-title", "subscribe-failed"));
        }
        tracing::info!(subscriber = id, "sign-up message sent");
    } else {
        tracing::info!(
            subscriber = id,
            "sign-up message not sent: one went to this address less than an hour ago"
        );
    }
    let mut resp = message_page(&v, 200, "subscribe-sent-title", "subscribe-sent-text");
    let _ = resp.add_removal_cookie(&Cookie::build(SUBSCRIBE_CSRF_COOKIE, "").path("/").finish());
    Ok(resp)
}

/// The subscriber of a token in the path, or the page to answer with.
async fn subscriber(
    v: &Viewer,
    data: &Data,
    token: String,
) -> Result<Result<SubscriberRow, HttpResponse>, Error> {
    match data
        .db
        .run(move |conn| subscribers::by_token(conn, &token))
        .await?
    {
        Some(row) => Ok(Ok(row)),
        None => Ok(Err(message_page(
            v,
            404,
            "link-invalid-title",
            "link-invalid-text",
        ))),
    }
}

/// A page behind a link from a message: it asks, and only its button's
/// POST acts (a link checker's GET changes nothing).
struct Ask {
    title: &'static str,
    text: &'static str,
    button: &'static str,
}

/// Confirming a sign-up.
const ASK_CONFIRM: Ask = Ask {
    title: "confirm-title",
    text: "confirm-text",
    button: "confirm-button",
};

/// Unsubscribing.
const ASK_UNSUBSCRIBE: Ask = Ask {
    title: "unsubscribe-title",
    text: "unsubscribe-text",
    button: "unsubscribe-button",
};

/// The GET page of a link: the question and a button posting to the same
/// path, or 404 for an unknown token.
async fn ask(
    request: HttpRequest,
    token: String,
    data: Data,
    ask: Ask,
) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    if let Err(page) = subscriber(&v, &data, token).await? {
        return Ok(page);
    }
    Ok(render(
        &v,
        200,
        &ButtonPage {
            v: &v,
            title: v.lang.t(ask.title),
            text: v.lang.t(ask.text),
            action: request.path().to_string(),
            button: v.lang.t(ask.button),
        },
    ))
}

/// What a link's POST does to the subscriber of its token; `None` for an
/// unknown token.
type TokenAction = fn(&mut DbConn, &str) -> Result<Option<i64>, DbError>;

fn confirm_token(conn: &mut DbConn, token: &str) -> Result<Option<i64>, DbError> {
    Ok(subscribers::confirm(conn, token)?.map(|row| row.id))
}

/// Runs a link's action, logs it with the subscriber id and answers with
/// the page `title`/`text` and a link to the preferences page.
async fn act(
    request: HttpRequest,
    token: String,
    data: Data,
    action: TokenAction,
    (title, text, link_label): (&str, &str, &str),
) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    let looked_up = token.clone();
    let Some(id) = data.db.run(move |conn| action(conn, &looked_up)).await? else {
        return Ok(message_page(
            &v,
            404,
            "link-invalid-title",
            "link-invalid-text",
        ));
    };
    tracing::info!(subscriber = id, page = title, "subscription link followed");
    let link = (
        format!("/subscribe/preferences/{token}"),
        v.lang.t(link_label),
    );
    Ok(message_text(&v, 200, title, v.lang.t(text), Some(link)))
}

async fn confirm(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let keys = ("confirmed-title", "confirmed-text", "mail-preferences");
    act(request, path.into_inner(), data, confirm_token, keys).await
}

/// RFC 8058 one-click unsubscribe: any POST to the URL (the mail client
/// sends `List-Unsubscribe=One-Click`) unsubscribes, without cookies or a
/// CSRF token; the button of the GET page posts here too.
async fn unsubscribe(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let keys = (
        "unsubscribed-title",
        "unsubscribed-text",
        "resubscribe-link",
    );
    act(
        request,
        path.into_inner(),
        data,
        subscribers::unsubscribe,
        keys,
    )
    .await
}

/// The notice on the preferences page for a subscriber's state.
fn state_notice(v: &Viewer, state: &str) -> Option<String> {
    match state {
        SUB_PENDING => Some(v.lang.t("preferences-pending")),
        SUB_PAUSED => Some(v.lang.t("preferences-paused")),
        SUB_UNSUBSCRIBED => Some(v.lang.t("preferences-unsubscribed")),
        _ => None,
    }
}

fn preferences_page(
    v: &Viewer,
    data: &Data,
    status: u16,
    row: &SubscriberRow,
    choices: &Choices,
    error: Option<String>,
    notice: Option<String>,
) -> Result<HttpResponse, Error> {
    form_page(
        v,
        data,
        status,
        FormState {
            title_key: "preferences-title",
            action: format!("/subscribe/preferences/{}", row.token),
            csrf: String::new(),
            email: None,
            choices,
            error,
            notice: notice.or_else(|| state_notice(v, &row.state)),
            unsubscribe: (row.state != SUB_UNSUBSCRIBED)
                .then(|| format!("/unsubscribe/{}", row.token)),
        },
    )
}

fn row_choices(row: &SubscriberRow) -> Choices {
    use crate::db::alerts::split_list;
    Choices {
        publications: split_list(&row.publications),
        languages: split_list(&row.languages),
        regions: split_list(&row.regions),
    }
}

async fn preferences(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    let row = match subscriber(&v, &data, path.into_inner()).await? {
        Ok(row) => row,
        Err(page) => return Ok(page),
    };
    preferences_page(&v, &data, 200, &row, &row_choices(&row), None, None)
}

/// Saving the preferences also (re)starts sending: the link came by
/// e-mail, so whoever follows it reads that mailbox.
async fn save_preferences(
    request: HttpRequest,
    path: aw::Path<String>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    let row = match subscriber(&v, &data, path.into_inner()).await? {
        Ok(row) => row,
        Err(page) => return Ok(page),
    };
    let choices = form_choices(&Form::parse(&body));
    if check_choices(&choices, &taxonomy(&data)?).is_some() {
        let error = Some(v.lang.t("subscribe-invalid"));
        return preferences_page(&v, &data, 422, &row, &choices, error, None);
    }
    let (id, saved) = (row.id, choices.clone());
    let row = data
        .db
        .run(move |conn| {
            subscribers::set_choices(conn, id, &saved)?;
            subscribers::set_state(conn, id, SUB_CONFIRMED)?;
            subscribers::by_id(conn, id)
        })
        .await?;
    tracing::info!(subscriber = row.id, "preferences saved");
    let notice = Some(v.lang.t("preferences-saved"));
    preferences_page(&v, &data, 200, &row, &choices, None, notice)
}
