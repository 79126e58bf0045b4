//! Who is asking: the interface language, and the logged-in account with
//! its session (cookie `tocsin_session`) and CSRF token.

use crate::{
    accounts,
    db::{
        self,
        users::{SessionRow, UserRow},
    },
    error::Error,
    state::Data,
    web::i18n::Lang,
};
use actix_web::{
    cookie::{Cookie, SameSite},
    HttpRequest, HttpResponse,
};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tocsin_session";
/// Name of the language cookie.
pub const LANG_COOKIE: &str = "lang";

/// What every page needs to know about the request.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// Interface language.
    pub lang: Lang,
    /// `?lang=` asked for a language: remember it in a cookie.
    pub remember_lang: bool,
    /// The request path (for the language switcher and login redirects).
    pub path: String,
    /// The logged-in account.
    pub user: Option<UserRow>,
    /// Its session.
    pub session: Option<SessionRow>,
    /// Whether cookies get `Secure`.
    pub secure: bool,
    /// The instance's name.
    pub site: String,
}

impl Viewer {
    /// The interface languages, for the switcher.
    pub fn langs(&self) -> &'static [(&'static str, &'static str)] {
        crate::web::i18n::LANGS
    }

    /// The session's CSRF token, empty when logged out.
    pub fn csrf(&self) -> &str {
        self.session
            .as_ref()
            .map(|s| s.csrf_token.as_str())
            .unwrap_or("")
    }

    /// True if the account may do what `role` allows.
    pub fn can(&self, role: &str) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| accounts::allows(&u.role, role))
    }

    /// A cookie with the attributes every cookie of ours has.
    pub fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .finish()
    }
}

/// The `lang` query parameter of `request`, if it names a language.
fn query_lang(request: &HttpRequest) -> Option<Lang> {
    url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::parse(&v))
}

/// The language of `request` without its query: the language cookie, else
/// `Accept-Language`, else English.
fn remembered_lang(request: &HttpRequest) -> Lang {
    request
        .cookie(LANG_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .or_else(|| {
            request
                .headers()
                .get("accept-language")
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default()
}

/// The language a page for `request` is in when the reader is anonymous
/// and the page sets no cookie; `None` with a session cookie or a `lang`
/// query (which sets one). The read cache keys pages by it.
pub fn anonymous_lang(request: &HttpRequest) -> Option<Lang> {
    if request.cookie(SESSION_COOKIE).is_some() || query_lang(request).is_some() {
        return None;
    }
    Some(remembered_lang(request))
}

/// Reads the language and session of `request`.
pub async fn viewer(request: &HttpRequest, data: &Data) -> Result<Viewer, Error> {
    let query_lang = query_lang(request);
    let lang = query_lang.unwrap_or_else(|| remembered_lang(request));
    let mut viewer = Viewer {
        lang,
        remember_lang: query_lang.is_some(),
        path: request.path().to_string(),
        secure: data.config.scheme() == "https",
        site: data.config.instance.name.clone(),
        ..Default::default()
    };
    if let Some(cookie) = request.cookie(SESSION_COOKIE) {
        let id = cookie.value().to_string();
        if let Some((session, user)) = data
            .db
            .run(move |conn| db::users::session(conn, &id))
            .await?
        {
            viewer.session = Some(session);
            viewer.user = Some(user);
        }
    }
    Ok(viewer)
}

/// A 303 redirect to `to`.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to.to_string()))
        .finish()
}

/// Where a request that needs a login is sent, followed by the URL-encoded
/// path to come back to.
pub const LOGIN_REDIRECT: &str = "/login?next=";

/// The viewer if logged in with `role` (or admin); otherwise the answer to
/// send: a redirect to the login page, or 403.
pub async fn require(
    request: &HttpRequest,
    data: &Data,
    role: &str,
) -> Result<Result<Viewer, HttpResponse>, Error> {
    let viewer = viewer(request, data).await?;
    if viewer.user.is_none() {
        // Back to the same page after login, query included (`/interact?uri=…`).
        let here = request
            .uri()
            .path_and_query()
            .map_or(viewer.path.clone(), |p| p.to_string());
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return Ok(Err(see_other(&format!("{LOGIN_REDIRECT}{next}"))));
    }
    if !viewer.can(role) {
        let page = crate::web::pages::message(&viewer, 403, "forbidden-title", "forbidden-text");
        return Ok(Err(page));
    }
    Ok(Ok(viewer))
}

/// A submitted `application/x-www-form-urlencoded` form.
#[derive(Debug, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Parses a form body.
    pub fn parse(body: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`, trimmed, if not empty.
    pub fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The first value of `key` exactly as sent (passwords), or "".
    pub fn raw(&self, key: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The first value of `key`, or "".
    pub fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or_default()
    }

    /// Every non-empty value of `key` (checkboxes, multiple selects).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// A POST from a logged-in account with `role`: checks the session and the
/// form's CSRF token (403 when it is missing or wrong).
pub async fn require_post(
    request: &HttpRequest,
    data: &Data,
    role: &str,
    form: &Form,
) -> Result<Result<Viewer, HttpResponse>, Error> {
    let viewer = match require(request, data, role).await? {
        Ok(v) => v,
        Err(resp) => return Ok(Err(resp)),
    };
    if !csrf_ok(&viewer, form) {
        return Ok(Err(crate::web::pages::message(
            &viewer,
            403,
            "csrf-title",
            "csrf-text",
        )));
    }
    Ok(Ok(viewer))
}

/// Whether the form carries the session's CSRF token.
pub fn csrf_ok(viewer: &Viewer, form: &Form) -> bool {
    let Some(session) = &viewer.session else {
        return false;
    };
    form.get("csrf")
        .is_some_and(|t| subtle_eq(t.as_bytes(), session.csrf_token.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
