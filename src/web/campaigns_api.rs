//! `/api/v1/campaigns`: joint campaigns hosted here, for staff with an API
//! token; the same functions as `tocsin campaign`.

use crate::{
    campaigns::{
        self,
        actions::{self, ActionInput},
        statements::{self, Statement, StatementInput},
        Campaign, CampaignInput,
    },
    db::{
        actors::ActorRow,
        campaigns::{ActionRow, ParticipantRow, RequestRow},
    },
    error::Error,
    federation::Urls,
    state::Data,
    web::api::{authenticate, parse},
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.service(
        aw::scope("/api/v1/campaigns")
            .route("", aw::get().to(list))
            .route("", aw::post().to(create))
            .route("/{name}", aw::get().to(get))
            .route("/{name}/participants", aw::post().to(invite))
            .route("/{name}/participants/{member}", aw::delete().to(remove))
            .route("/{name}/actions", aw::get().to(list_actions))
            .route("/{name}/actions", aw::post().to(create_action))
            .route("/{name}/statements", aw::get().to(list_statements))
            .route("/{name}/statements", aw::post().to(draft_statement))
            .route(
                "/{name}/statements/{id}/confirm",
                aw::post().to(confirm_statement),
            ),
    );
    cfg.service(
        aw::scope("/api/v1/statement-requests")
            .route("", aw::get().to(list_requests))
            .route("/{id}/confirm", aw::post().to(confirm_request)),
    );
}

/// A participating (or invited) organisation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParticipantView {
    /// `@user@host`.
    pub handle: String,
    /// Actor id.
    pub ap_id: String,
    /// Display name.
    pub name: Option<String>,
    /// `invited`, `joined` or `left`.
    pub state: String,
}

/// A campaign as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    /// `@username@domain`.
    pub handle: String,
    /// The `Group` actor's id.
    pub ap_id: String,
    /// Display name.
    pub name: String,
    /// Aims.
    pub aims: String,
    /// Target country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// Target theme.
    pub theme: Option<String>,
    /// Invited and joined organisations.
    pub participants: Vec<ParticipantView>,
}

/// Body of `POST /api/v1/campaigns/{name}/participants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    /// `@alerts@ngo.example` or an actor URL.
    pub member: String,
}

fn participant_view(p: ParticipantRow, a: ActorRow) -> ParticipantView {
    ParticipantView {
        handle: format!("@{}@{}", a.username, a.domain),
        ap_id: a.ap_id,
        name: a.name,
        state: p.state,
    }
}

async fn view(data: &Data, c: Campaign) -> Result<CampaignView, Error> {
    let participants = campaigns::participants(data, &c)
        .await?
        .into_iter()
        .map(|(p, a)| participant_view(p, a))
        .collect();
    Ok(CampaignView {
        handle: format!("@{}@{}", c.actor.username, data.config.instance.domain),
        ap_id: Urls::new(&data.config).actor(&c.actor.username).to_string(),
        name: c.actor.name.unwrap_or_default(),
        aims: c.row.aims,
        country: c.row.country,
        theme: c.row.theme,
        participants,
    })
}

/// `GET /api/v1/campaigns`
#[utoipa::path(get, path = "/api/v1/campaigns", security(("bearer" = [])),
    responses((status = 200, description = "`{\"campaigns\": [CampaignView]}`"), (status = 401, body = crate::web::api::ErrorBody)))]
pub async fn list(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let mut out = Vec::new();
    for c in campaigns::list(&data).await? {
        out.push(view(&data, c).await?);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "campaigns": out })))
}

/// `POST /api/v1/campaigns`
#[utoipa::path(post, path = "/api/v1/campaigns", security(("bearer" = [])), request_body = CampaignInput,
    responses((status = 201, body = CampaignView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn create(
    request: HttpRequest,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let input: CampaignInput = parse(&data, &body)?;
    let c = campaigns::create(&data, input).await?;
    Ok(HttpResponse::Created().json(view(&data, c).await?))
}

/// `GET /api/v1/campaigns/{name}`
#[utoipa::path(get, path = "/api/v1/campaigns/{name}", security(("bearer" = [])),
    params(("name" = String, Path, description = "The campaign's username")),
    responses((status = 200, body = CampaignView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody)))]
pub async fn get(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let c = campaigns::by_username(&data, &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(&data, c).await?))
}

/// `POST /api/v1/campaigns/{name}/participants`: invites an organisation
/// (it joins when it follows, or at once if it already does).
#[utoipa::path(post, path = "/api/v1/campaigns/{name}/participants", security(("bearer" = [])),
    params(("name" = String, Path, description = "The campaign's username")), request_body = InviteInput,
    responses((status = 200, body = ParticipantView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn invite(
    request: HttpRequest,
    path: aw::Path<String>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let input: InviteInput = parse(&data, &body)?;
    let c = campaigns::by_username(&data, &path.into_inner()).await?;
    let (p, org) = campaigns::invite(&data, &c, &input.member).await?;
    Ok(HttpResponse::Ok().json(participant_view(p, org)))
}

/// `DELETE /api/v1/campaigns/{name}/participants/{member}`: withdraws an
/// invitation or removes a participant (`member` URL-encoded).
#[utoipa::path(delete, path = "/api/v1/campaigns/{name}/participants/{member}", security(("bearer" = [])),
    params(("name" = String, Path, description = "The campaign's username"),
        ("member" = String, Path, description = "`user@host` or an actor URL, URL-encoded")),
    responses((status = 204), (status = 401, body = crate::web::api::ErrorBody), (status = 404, body = crate::web::api::ErrorBody)))]
pub async fn remove(
    request: HttpRequest,
    path: aw::Path<(String, String)>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let (name, member) = path.into_inner();
    let c = campaigns::by_username(&data, &name).await?;
    campaigns::remove(&data, &c, &member).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A co-signer of a statement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignerView {
    /// `@user@host`.
    pub handle: String,
    /// Actor id.
    pub ap_id: String,
    /// `pending` or `confirmed`.
    pub state: String,
}

/// A co-signed statement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatementView {
    /// Row id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Markdown text.
    pub body: String,
    /// BCP 47 tag.
    pub language: String,
    /// `draft` until every co-signer confirmed, then `published`.
    pub state: String,
    /// The published alert's id (`published` only).
    pub alert_id: Option<i64>,
    /// Co-signers in order.
    pub signers: Vec<SignerView>,
}

/// A statement a campaign offered to this instance's organisation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// Row id.
    pub id: i64,
    /// The offering campaign's actor id.
    pub campaign: String,
    /// Title.
    pub title: String,
    /// Sanitised HTML text.
    pub content_html: String,
    /// `pending` or `confirmed`.
    pub state: String,
}

/// Body of `POST /api/v1/campaigns/{name}/statements/{id}/confirm`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmInput {
    /// The co-signer of this instance confirming: `@user@host` or its URL.
    pub member: String,
}

fn statement_view(s: Statement) -> StatementView {
    StatementView {
        id: s.row.id,
        title: s.row.title,
        body: s.row.body,
        language: s.row.language,
        state: s.row.state,
        alert_id: s.row.alert_id,
        signers: s
            .signers
            .into_iter()
            .map(|(r, a)| SignerView {
                handle: format!("@{}@{}", a.username, a.domain),
                ap_id: a.ap_id,
                state: r.state,
            })
            .collect(),
    }
}

fn request_view(r: RequestRow, campaign: String) -> RequestView {
    RequestView {
        id: r.id,
        campaign,
        title: r.title,
        content_html: r.content_html,
        state: r.state,
    }
}

/// `GET /api/v1/campaigns/{name}/statements`
#[utoipa::path(get, path = "/api/v1/campaigns/{name}/statements", security(("bearer" = [])),
    params(("name" = String, Path, description = "The campaign's username")),
    responses((status = 200, description = "`{\"statements\": [StatementView]}`"), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody)))]
pub async fn list_statements(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let c = campaigns::by_username(&data, &path.into_inner()).await?;
    let out: Vec<StatementView> = statements::list(&data, &c)
        .await?
        .into_iter()
        .map(statement_view)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "statements": out })))
}

/// `POST /api/v1/campaigns/{name}/statements`: drafts a statement and
/// offers it to each remote co-signer.
#[utoipa::path(post, path = "/api/v1/campaigns/{name}/statements", security(("bearer" = [])),
    params(("name" = String, Path, description = "The campaign's username")), request_body = StatementInput,
    responses((status = 201, body = StatementView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn draft_statement(
    request: HttpRequest,
    path: aw::Path<String>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let input: StatementInput = parse(&data, &body)?;
    let c = campaigns::by_username(&data, &path.into_inner()).await?;
    let s = statements::draft(&data, &c, input).await?;
    Ok(HttpResponse::Created().json(statement_view(s)))
}

/// `POST /api/v1/campaigns/{name}/statements/{id}/confirm`: staff confirm
/// for a co-signer of this instance.
#[utoipa::path(post, path = "/api/v1/campaigns/{name}/statements/{id}/confirm", security(("bearer" = [])),
    params(("name" = String, Path, description = "The campaign's username"), ("id" = i64, Path)),
    request_body = ConfirmInput,
    responses((status = 200, body = StatementView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn confirm_statement(
    request: HttpRequest,
    path: aw::Path<(String, i64)>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let input: ConfirmInput = parse(&data, &body)?;
    let (name, id) = path.into_inner();
    let c = campaigns::by_username(&data, &name).await?;
    let s = statements::confirm_local(&data, &c, id, &input.member).await?;
    Ok(HttpResponse::Ok().json(statement_view(s)))
}

/// `GET /api/v1/statement-requests`: statements campaigns offered to this
/// instance's organisation.
#[utoipa::path(get, path = "/api/v1/statement-requests", security(("bearer" = [])),
    responses((status = 200, description = "`{\"requests\": [RequestView]}`"), (status = 401, body = crate::web::api::ErrorBody)))]
pub async fn list_requests(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let out: Vec<RequestView> = statements::requests(&data)
        .await?
        .into_iter()
        .map(|(r, c)| request_view(r, c.ap_id))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "requests": out })))
}

/// `POST /api/v1/statement-requests/{id}/confirm`: co-signs; an `Accept`
/// goes to the campaign.
#[utoipa::path(post, path = "/api/v1/statement-requests/{id}/confirm", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = RequestView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn confirm_request(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let r = statements::confirm_request(&data, path.into_inner()).await?;
    let campaign = r.campaign_actor_id;
    let campaign = data
        .db
        .run(move |conn| crate::db::actors::by_id(conn, campaign))
        .await?;
    Ok(HttpResponse::Ok().json(request_view(r, campaign.ap_id)))
}

/// A call to action.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActionView {
    /// Row id.
    pub id: i64,
    /// Its ActivityPub id (`Event` when dated, else `Note`).
    pub ap_id: String,
    /// Title.
    pub title: String,
    /// Markdown details.
    pub body: String,
    /// Start (ms since the epoch).
    pub starts_at: Option<i64>,
    /// End (ms since the epoch).
    pub ends_at: Option<i64>,
}

fn action_view(data: &Data, campaign: &str, r: ActionRow) -> ActionView {
    ActionView {
        ap_id: actions::action_id(&Urls::new(&data.config), campaign, r.id),
        id: r.id,
        title: r.title,
        body: r.body,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
    }
}

/// `GET /api/v1/campaigns/{name}/actions`
#[utoipa::path(get, path = "/api/v1/campaigns/{name}/actions", security(("bearer" = [])),
    params(("name" = String, Path, description = "The campaign's username")),
    responses((status = 200, description = "`{\"actions\": [ActionView]}`"), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody)))]
pub async fn list_actions(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let c = campaigns::by_username(&data, &path.into_inner()).await?;
    let out: Vec<ActionView> = actions::list(&data, &c)
        .await?
        .into_iter()
        .map(|r| action_view(&data, &c.actor.username, r))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "actions": out })))
}

/// `POST /api/v1/campaigns/{name}/actions`: publishes a call to action to
/// the campaign's followers.
#[utoipa::path(post, path = "/api/v1/campaigns/{name}/actions", security(("bearer" = [])),
    params(("name" = String, Path, description = "The campaign's username")), request_body = ActionInput,
    responses((status = 201, body = ActionView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn create_action(
    request: HttpRequest,
    path: aw::Path<String>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let input: ActionInput = parse(&data, &body)?;
    let c = campaigns::by_username(&data, &path.into_inner()).await?;
    let row = actions::create(&data, &c, input).await?;
    Ok(HttpResponse::Created().json(action_view(&data, &c.actor.username, row)))
}
