//! The member directory in the JSON API.

use crate::{
    curation::members, db, error::Error, federation::activities::follow::local_actor, state::Data,
    web::api::authenticate,
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.service(
        aw::resource("/api/v1/members")
            .route(aw::get().to(list))
            .route(aw::post().to(add))
            .route(aw::delete().to(remove)),
    );
}

/// A member as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// `@user@host`.
    pub handle: String,
    /// Actor id.
    pub ap_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Region key.
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// State of our follow: `pending`, `accepted`, `rejected`.
    pub follow: Option<String>,
}

/// Body of `POST /api/v1/members`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    /// `@alerts@ngo.example` or an actor URL.
    pub handle: String,
    /// Region key from the taxonomy.
    #[serde(default)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 codes.
    #[serde(default)]
    pub countries: Vec<String>,
}

/// Query of `DELETE /api/v1/members`.
#[derive(Debug, Deserialize)]
pub struct RemoveQuery {
    /// `@alerts@ngo.example` or an actor URL.
    pub handle: String,
}

async fn views(data: &Data) -> Result<Vec<MemberView>, Error> {
    let username = data.config.actor.username.clone();
    Ok(data
        .db
        .run(move |conn| {
            let us = db::actors::local_by_username(conn, &username)?;
            let mut out = Vec::new();
            for (m, a) in db::curation::members(conn)? {
                let follow = match &us {
                    Some(us) => db::follows::find(conn, us.id, a.id)?.map(|f| f.state),
                    None => None,
                };
                out.push(MemberView {
                    handle: format!("@{}@{}", a.username, a.domain),
                    ap_id: a.ap_id,
                    name: a.name,
                    region: m.region,
                    countries: db::alerts::split_list(&m.countries),
                    follow,
                });
            }
            Ok(out)
        })
        .await?)
}

/// `GET /api/v1/members`
#[utoipa::path(get, path = "/api/v1/members", security(("bearer" = [])),
    responses((status = 200, description = "`{\"members\": [MemberView]}`"), (status = 401, body = crate::web::api::ErrorBody)))]
pub async fn list(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "members": views(&data).await? })))
}

/// `POST /api/v1/members`
#[utoipa::path(post, path = "/api/v1/members", security(("bearer" = [])), request_body = MemberInput,
    responses((status = 201, body = MemberView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 422, body = crate::web::api::ErrorBody), (status = 502, description = "the handle could not be looked up")))]
pub async fn add(request: HttpRequest, body: aw::Bytes, data: Data) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    crate::limits::check_json_depth(&body, data.config.limits.max_json_depth)?;
    let input: MemberInput = serde_json::from_slice(&body).map_err(|e| Error::Validation {
        field: "body".into(),
        message: e.to_string(),
    })?;
    let us = local_actor(&data, &data.config.actor.username).await?;
    let member = members::add(&data, &us, &input.handle, input.region, input.countries).await?;
    let view = views(&data)
        .await?
        .into_iter()
        .find(|v| v.ap_id == member.ap_id.as_str());
    Ok(HttpResponse::Created().json(view))
}

/// `DELETE /api/v1/members?handle=…`
#[utoipa::path(delete, path = "/api/v1/members", security(("bearer" = [])),
    params(("handle" = String, Query)),
    responses((status = 204), (status = 401, body = crate::web::api::ErrorBody), (status = 404, body = crate::web::api::ErrorBody)))]
pub async fn remove(
    request: HttpRequest,
    query: aw::Query<RemoveQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    if members::remove(&data, &query.handle).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Error::NotFound)
    }
}
