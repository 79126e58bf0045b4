//! Account management for admins: the accounts with their roles and
//! states, adding an account with a role, resetting a password, disabling
//! and enabling an account, changing a role. Admin role only. Built on
//! crate::accounts.

use crate::{
    accounts::{self, ADMIN, ROLES},
    db,
    error::Error,
    state::Data,
    web::{
        author_pages::allowed,
        pages::{choices, render, Choice},
        session::{require, require_post, see_other, Form, Viewer},
    },
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use askama::Template;

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/admin/users", aw::get().to(list))
        .route("/admin/users/add", aw::post().to(add))
        .route("/admin/users/{name}/{action}", aw::post().to(act));
}

struct Account {
    name: String,
    role: String,
    state: String,
    disabled: bool,
    created: String,
    roles: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    v: &'a Viewer,
    title: String,
    error: Option<String>,
    notice: Option<String>,
    /// A password made for an account, shown once.
    secret: Option<(String, String)>,
    accounts: Vec<Account>,
    roles: Vec<Choice>,
}

fn role_choices(v: &Viewer, selected: &str) -> Vec<Choice> {
    choices(
        ROLES
            .iter()
            .map(|r| (r.to_string(), v.lang.t(&format!("role-{r}"))))
            .collect(),
        &[selected.to_string()],
    )
}

async fn users_page(
    v: &Viewer,
    data: &Data,
    status: u16,
    error: Option<String>,
    notice: Option<String>,
    secret: Option<(String, String)>,
) -> Result<HttpResponse, Error> {
    let rows = data.db.run(db::users::list).await?;
    let now = db::now_ms();
    let page = UsersPage {
        title: v.lang.t("nav-accounts"),
        error,
        notice,
        secret,
        accounts: rows
            .iter()
            .map(|u| Account {
                name: u.name.clone(),
                role: v.lang.t(&format!("role-{}", u.role)),
                state: if u.disabled_at.is_some() {
                    v.lang.t("account-disabled")
                } else if u.locked_until.is_some_and(|l| l > now) {
                    v.lang.t("account-locked")
                } else {
                    v.lang.t("account-active")
                },
                disabled: u.disabled_at.is_some(),
                created: v.lang.date(u.created_at),
                roles: role_choices(v, &u.role),
            })
            .collect(),
        roles: role_choices(v, accounts::AUTHOR),
        v,
    };
    Ok(render(v, status, &page))
}

async fn list(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, ADMIN).await?);
    let notice = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, d)| v.lang.t(&format!("done-account-{d}")));
    users_page(&v, &data, 200, None, notice, None).await
}

/// The given password, or a generated one to show once.
fn password_of(form: &Form) -> (String, bool) {
    let given = form.raw("password");
    if given.is_empty() {
        (accounts::generate_password(), true)
    } else {
        (given, false)
    }
}

async fn failed(v: &Viewer, data: &Data, e: Error) -> Result<HttpResponse, Error> {
    match e {
        Error::Validation { field, message } => {
            users_page(
                v,
                data,
                422,
                Some(format!("{field}: {message}")),
                None,
                None,
            )
            .await
        }
        other => Err(other),
    }
}

async fn add(request: HttpRequest, body: aw::Bytes, data: Data) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, ADMIN, &form).await?);
    let name = form.text("name");
    let (password, generated) = password_of(&form);
    match accounts::add_user(&data.db, &name, &form.text("role"), &password).await {
        Ok(user) => {
            let notice = Some(v.lang.t_args("done-account-added", &[("name", user.name)]));
            let secret = generated.then_some((name, password));
            users_page(&v, &data, 200, None, notice, secret).await
        }
        Err(e) => failed(&v, &data, e).await,
    }
}

async fn act(
    request: HttpRequest,
    path: aw::Path<(String, String)>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, ADMIN, &form).await?);
    let (name, action) = path.into_inner();
    let result = match action.as_str() {
        "role" => accounts::set_role(&data.db, &name, &form.text("role")).await,
        "disable" => accounts::set_disabled(&data.db, &name, true).await,
        "enable" => accounts::set_disabled(&data.db, &name, false).await,
        "password" => {
            let (password, generated) = password_of(&form);
            return match accounts::set_password(&data.db, &name, &password).await {
                Ok(()) => {
                    let notice = Some(
                        v.lang
                            .t_args("done-account-password", &[("name", name.clone())]),
                    );
                    let secret = generated.then_some((name, password));
                    users_page(&v, &data, 200, None, notice, secret).await
                }
                Err(e) => failed(&v, &data, e).await,
            };
        }
        _ => return Err(Error::NotFound),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/admin/users?done={action}"))),
        Err(e) => failed(&v, &data, e).await,
    }
}
