//! Logging in and out, and changing one's password.

use crate::{
    accounts::{self, LoginError},
    db,
    error::Error,
    state::Data,
    web::{
        pages::{message, render},
        rate_limit::{client_address, Bucket},
        session::{
            csrf_ok, require, require_post, see_other, viewer, Form, Viewer, SESSION_COOKIE,
        },
    },
};
use actix_web::{
    cookie::Cookie,
    http::header::{HeaderValue, RETRY_AFTER},
    web as aw, HttpRequest, HttpResponse,
};
use askama::Template;

/// Cookie holding the login form's CSRF token (double submit: there is no
/// session yet).
const LOGIN_CSRF_COOKIE: &str = "tocsin_login_csrf";

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/login", aw::get().to(login_form))
        .route("/login", aw::post().to(login))
        .route("/logout", aw::post().to(logout))
        .route("/account", aw::get().to(account))
        .route("/account/password", aw::post().to(change_password));
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    v: &'a Viewer,
    title: String,
    error: Option<String>,
    csrf: String,
    next: String,
}

/// Only local paths are followed after login.
fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".to_string())
}

fn login_page(v: &Viewer, status: u16, error: Option<String>, next: String) -> HttpResponse {
    let csrf = accounts::random_token();
    let mut resp = render(
        v,
        status,
        &LoginPage {
            v,
            title: v.lang.t("login"),
            error,
            csrf: csrf.clone(),
            next,
        },
    );
    let _ = resp.add_cookie(&v.cookie(LOGIN_CSRF_COOKIE, csrf));
    resp
}

async fn login_form(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    let next = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned());
    Ok(login_page(&v, 200, None, safe_next(next)))
}

async fn login(request: HttpRequest, body: aw::Bytes, data: Data) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    let form = Form::parse(&body);
    let address = client_address(&request, data.config.server.trust_forwarded_for);
    if let Err(Error::TooManyRequests(secs)) = data.rate_limits.check(Bucket::LoginByIp, &address) {
        let text = v
            .lang
            .t_args("login-too-many", &[("seconds", secs.to_string())]);
        let mut resp = login_page(&v, 429, Some(text), safe_next(form.get("next")));
        resp.headers_mut().insert(
            RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
        return Ok(resp);
    }
    let cookie_token = request
        .cookie(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_string());
    if cookie_token.is_none() || form.get("csrf") != cookie_token {
        return Ok(message(&v, 403, "csrf-title", "csrf-text"));
    }
    let next = safe_next(form.get("next"));
    let (name, password) = (form.text("name"), form.raw("password"));
    match accounts::login(&data.db, &name, &password).await? {
        Ok(session) => {
            // A fresh session id at every login; an old one is dropped.
            if let Some(old) = request.cookie(SESSION_COOKIE) {
                let old = old.value().to_string();
                data.db
                    .run(move |conn| db::users::delete_session(conn, &old))
                    .await?;
            }
            let mut resp = see_other(&next);
            let _ = resp.add_cookie(&v.cookie(SESSION_COOKIE, session.id));
            let _ =
                resp.add_removal_cookie(&Cookie::build(LOGIN_CSRF_COOKIE, "").path("/").finish());
            Ok(resp)
        }
        Err(LoginError::Wrong) => Ok(login_page(&v, 401, Some(v.lang.t("login-wrong")), next)),
        Err(LoginError::Disabled) => {
            Ok(login_page(&v, 403, Some(v.lang.t("login-disabled")), next))
        }
        Err(LoginError::Locked(until)) => Ok(login_page(
            &v,
            429,
            Some(
                v.lang
                    .t_args("login-locked", &[("time", v.lang.date_time(until))]),
            ),
            next,
        )),
    }
}

async fn logout(request: HttpRequest, body: aw::Bytes, data: Data) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    if v.session.is_some() && !csrf_ok(&v, &Form::parse(&body)) {
        return Ok(message(&v, 403, "csrf-title", "csrf-text"));
    }
    if let Some(cookie) = request.cookie(SESSION_COOKIE) {
        let id = cookie.value().to_string();
        data.db
            .run(move |conn| db::users::delete_session(conn, &id))
            .await?;
    }
    let mut resp = see_other("/");
    let _ = resp.add_removal_cookie(&Cookie::build(SESSION_COOKIE, "").path("/").finish());
    Ok(resp)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    v: &'a Viewer,
    title: String,
    error: Option<String>,
    notice: Option<String>,
}

fn account_page(
    v: &Viewer,
    status: u16,
    error: Option<String>,
    notice: Option<String>,
) -> HttpResponse {
    render(
        v,
        status,
        &AccountPage {
            v,
            title: v.lang.t("account"),
            error,
            notice,
        },
    )
}

async fn account(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    Ok(match require(&request, &data, accounts::ANY).await? {
        Ok(v) => {
            let changed = request.query_string().contains("changed=1");
            account_page(&v, 200, None, changed.then(|| v.lang.t("password-changed")))
        }
        Err(resp) => resp,
    })
}

async fn change_password(
    request: HttpRequest,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = match require_post(&request, &data, accounts::ANY, &form).await? {
        Ok(x) => x,
        Err(resp) => return Ok(resp),
    };
    let user = v.user.clone().ok_or(Error::NotFound)?;
    let (old, new) = (form.raw("old_password"), form.raw("new_password"));
    match accounts::change_password(&data.db, &user, &old, &new).await {
        Ok(session) => {
            let mut resp = see_other("/account?changed=1");
            let _ = resp.add_cookie(&v.cookie(SESSION_COOKIE, session.id));
            Ok(resp)
        }
        Err(Error::Validation { message, .. }) => Ok(account_page(&v, 422, Some(message), None)),
        Err(e) => Err(e),
    }
}
