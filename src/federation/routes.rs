//! Discovery and actor routes: WebFinger, host-meta, NodeInfo, actors and
//! their collections. Each actor URL answers ActivityPub clients with JSON
//! and browsers with HTML.

use super::{
    objects::{
        actor::{actor_context, local_keys, ActorJson},
        alert::{local_note, namespace_document as note_namespace, note_context},
        issue as issue_wire,
    },
    Urls, ACTIVITY_JSON, INSTANCE_ACTOR_USERNAME,
};
use crate::{
    db::{self, actors::ActorRow},
    error::Error,
    federation::inbox::post_inbox,
    state::Data,
    web::{self, read_cache},
};
use actix_web::{http::header, web as aw, HttpRequest, HttpResponse};
use chrono::TimeZone;
use serde::Deserialize;
use serde_json::json;

/// Registers every federation route.
///
/// The routes with a `{parameter}` sit in scopes with a fixed prefix
/// (`/actors`, `/alerts`, `/nodeinfo`): actix-web tries an application's
/// routes in turn, and each pattern with a parameter costs a regular
/// expression run, while a fixed prefix is a string comparison. An
/// alert's GET ran nine expressions before it found its own (a seventh of
/// a read's time); now it runs one, and so does every route registered
/// after these.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/.well-known/webfinger", aw::get().to(webfinger))
        .route("/.well-known/host-meta", aw::get().to(host_meta))
        .route("/.well-known/nodeinfo", aw::get().to(nodeinfo_links))
        .service(aw::scope("/nodeinfo").route("/{version}", aw::get().to(nodeinfo)))
        .route("/inbox", aw::post().to(post_inbox))
        .route("/actor", aw::get().to(instance_actor))
        .route("/actor/inbox", aw::post().to(post_inbox))
        .service(
            aw::scope("/actors")
                .route("/{name}", aw::get().to(actor))
                .route("/{name}/inbox", aw::post().to(post_inbox))
                .route("/{name}/outbox", aw::get().to(outbox))
                .route("/{name}/followers", aw::get().to(followers))
                .route("/{name}/following", aw::get().to(following))
                .route("/{name}/featured", aw::get().to(featured))
                .route("/{name}/actions/{id}", aw::get().to(campaign_action)),
        )
        .service(aw::scope("/alerts").route("/{uuid}", aw::get().to(alert)))
        // ActivityPub clients get the Article; a browser's request falls
        // through to the issue page (web::publication_pages).
        .service(
            aw::resource("/publications/{publication}/issues/{id}")
                .guard(actix_web::guard::fn_guard(|ctx| {
                    accepts_activity_json(ctx.head().headers())
                }))
                .route(aw::get().to(issue_article)),
        )
        .route("/ns", aw::get().to(namespace))
        .route("/members", aw::get().to(members));
}

/// The member directory: an `OrderedCollection` of the members (with
/// region and countries) for machines, an HTML list for people.
async fn members(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    read_cache::serve(&request, &data, members_answer(&request, &data)).await
}

async fn members_answer(request: &HttpRequest, data: &Data) -> Result<HttpResponse, Error> {
    let rows = data.db.run(db::curation::members).await?;
    if !wants_activity_json(request) {
        return web::pages::directory(request, data, &rows).await;
    }
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(m, a)| {
            json!({
                "id": a.ap_id,
                "type": a.kind,
                "name": a.name,
                "preferredUsername": a.username,
                "url": a.url,
                "region": m.region,
                "countries": db::alerts::split_list(&m.countries),
            })
        })
        .collect();
    let urls = Urls::new(&data.config);
    let mut c = ordered_collection(
        url::Url::parse(&format!("{}/members", urls.base()))?,
        items.len() as i64,
        Some(items),
    );
    c["@context"] = json!(["https://www.w3.org/ns/activitystreams", {
        "tocsin": format!("{}/ns#", urls.base()),
        "region": "tocsin:region",
        "countries": "tocsin:countries",
    }]);
    Ok(activity_json(&c))
}

/// A campaign's call to action: its `Event` or `Note` for ActivityPub
/// clients, the campaign's page for browsers.
async fn campaign_action(
    request: HttpRequest,
    path: aw::Path<(String, i64)>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let (name, id) = path.into_inner();
    let object = crate::campaigns::actions::object(&data, &name, id).await?;
    if wants_activity_json(&request) {
        return Ok(activity_json(&object));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/@{name}#action-{id}")))
        .finish())
}

async fn namespace(data: Data) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/ld+json; charset=utf-8")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(note_namespace(&Urls::new(&data.config)))
}

/// A Note with its `@context`.
async fn note_document(
    data: &Data,
    row: &crate::db::alerts::AlertRow,
) -> Result<serde_json::Value, Error> {
    let mut note = local_note(data, row).await?;
    note["@context"] = note_context(&Urls::new(&data.config));
    Ok(note)
}

async fn alert(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let uuid = path.into_inner();
    read_cache::serve(&request, &data, alert_answer(&request, &data, uuid)).await
}

async fn alert_answer(
    request: &HttpRequest,
    data: &Data,
    uuid: String,
) -> Result<HttpResponse, Error> {
    let ap_id = format!("{}/alerts/{uuid}", Urls::new(&data.config).base());
    let lookup = ap_id.clone();
    let row = data
        .db
        .run(move |conn| db::alerts::by_ap_id(conn, &lookup))
        .await?
        .filter(|r| r.local && r.status != crate::alerts::STATUS_DRAFT)
        .ok_or(Error::NotFound)?;
    if row.status == crate::alerts::STATUS_DELETED {
        if wants_activity_json(request) {
            return Ok(HttpResponse::Gone()
                .content_type(ACTIVITY_JSON)
                .insert_header((header::VARY, "Accept"))
                .json(json!({
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": ap_id,
                    "type": "Tombstone",
                    "formerType": "Note",
                    "deleted": chrono::Utc.timestamp_millis_opt(row.deleted_at.unwrap_or(row.updated_at)).single()
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                })));
        }
        return web::pages::gone(request, data).await;
    }
    if wants_activity_json(request) {
        return Ok(activity_json(&note_document(data, &row).await?));
    }
    web::pages::alert(request, data, &row).await
}

/// True when the client asked for ActivityPub JSON rather than HTML.
pub fn wants_activity_json(request: &HttpRequest) -> bool {
    accepts_activity_json(request.headers())
}

/// True when these request headers ask for ActivityPub JSON.
fn accepts_activity_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            let accept = accept.to_ascii_lowercase();
            accept.contains("application/activity+json")
                || accept.contains("application/ld+json")
                || accept.contains("application/json")
        })
}

/// An ActivityPub JSON response with `Vary: Accept`, a strong `ETag` of
/// its body and a short public cache lifetime; `server::not_modified`
/// answers a matching `If-None-Match` with 304.
pub fn activity_json(value: &serde_json::Value) -> HttpResponse {
    cacheable_json(ACTIVITY_JSON, value, true)
}

/// `value` as `content_type` with a strong `ETag` of the body, a short
/// public cache lifetime and open CORS; `Vary: Accept` when the same URL
/// also serves HTML.
fn cacheable_json(content_type: &str, value: &serde_json::Value, vary: bool) -> HttpResponse {
    use sha2::{Digest, Sha256};
    let body = serde_json::to_vec(value).unwrap_or_default();
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
    let mut response = HttpResponse::Ok();
    if vary {
        response.insert_header((header::VARY, "Accept"));
    }
    response
        .content_type(content_type)
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .body(body)
}

async fn local_actor_row(data: &Data, name: String) -> Result<ActorRow, Error> {
    data.db
        .run(move |conn| db::actors::local_by_username(conn, &name))
        .await?
        .ok_or(Error::NotFound)
}

async fn actor_document(data: &Data, row: &ActorRow) -> Result<serde_json::Value, Error> {
    let keys = local_keys(data, row).await?;
    let urls = Urls::new(&data.config);
    let mut value = serde_json::to_value(ActorJson::from_local(row, &keys, &urls)?)?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("@context".into(), actor_context());
    }
    Ok(value)
}

async fn actor_response(
    request: &HttpRequest,
    data: &Data,
    name: String,
) -> Result<HttpResponse, Error> {
    let row = local_actor_row(data, name).await?;
    if wants_activity_json(request) {
        return Ok(activity_json(&actor_document(data, &row).await?));
    }
    if let Some(publication) = crate::publications::find(&row.username) {
        // A publication's page is the list of its issues.
        return Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("/publications/{}", publication.name),
            ))
            .insert_header((header::VARY, "Accept"))
            .finish());
    }
    web::pages::profile(request, data, &row).await
}

async fn actor(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let name = path.into_inner();
    if name == INSTANCE_ACTOR_USERNAME {
        return Err(Error::NotFound);
    }
    read_cache::serve(&request, &data, actor_response(&request, &data, name)).await
}

async fn instance_actor(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    read_cache::serve(&request, &data, async {
        let row = local_actor_row(&data, INSTANCE_ACTOR_USERNAME.into()).await?;
        Ok(activity_json(&actor_document(&data, &row).await?))
    })
    .await
}

#[derive(Deserialize)]
struct WebfingerQuery {
    resource: Option<String>,
}

/// Extracts the local username from an `acct:` resource or an actor URL.
pub fn webfinger_username(resource: &str, urls: &Urls, domain: &str) -> Result<String, Error> {
    if let Some(acct) = resource.strip_prefix("acct:") {
        let acct = acct.trim_start_matches('@');
        let (user, host) = acct
            .rsplit_once('@')
            .ok_or_else(|| Error::BadRequest(format!("resource {resource} has no host")))?;
        // No local username has a `/` (the URL form refuses it too).
        if !host.eq_ignore_ascii_case(domain) || user.is_empty() || user.contains('/') {
            return Err(Error::NotFound);
        }
        return Ok(user.to_string());
    }
    let url = url::Url::parse(resource).map_err(|_| {
        Error::BadRequest(format!("resource {resource} is neither acct: nor a URL"))
    })?;
    let base = url::Url::parse(urls.base())?;
    if !super::same_origin(&url, &base) {
        return Err(Error::NotFound);
    }
    let path = url.path();
    if path == "/actor" {
        return Ok(INSTANCE_ACTOR_USERNAME.to_string());
    }
    path.strip_prefix("/actors/")
        .or_else(|| path.strip_prefix("/@"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .map(str::to_string)
        .ok_or(Error::NotFound)
}

async fn webfinger(
    request: HttpRequest,
    query: aw::Query<WebfingerQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let query = query.into_inner();
    read_cache::serve(&request, &data, webfinger_answer(query, &data)).await
}

async fn webfinger_answer(query: WebfingerQuery, data: &Data) -> Result<HttpResponse, Error> {
    let resource = query
        .resource
        .ok_or_else(|| Error::BadRequest("missing resource parameter".into()))?;
    let urls = Urls::new(&data.config);
    let username = webfinger_username(&resource, &urls, &data.config.instance.domain)?;
    let row = local_actor_row(data, username).await?;
    let actor_url = urls.actor(&row.username);
    let mut links = vec![json!({
        "rel": "self",
        "type": "application/activity+json",
        "href": actor_url,
    })];
    if row.username != INSTANCE_ACTOR_USERNAME {
        links.insert(
            0,
            json!({
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": urls.profile_page(&row.username),
            }),
        );
        // Remote interaction: another server's "follow" box sends a reader
        // of ours here with the account to follow.
        links.push(json!({
            "rel": crate::web::remote_follow::SUBSCRIBE_REL,
            "template": format!("{}/interact?uri={{uri}}", urls.base()),
        }));
    }
    let body = json!({
        "subject": format!("acct:{}@{}", row.username, data.config.instance.domain),
        "aliases": [actor_url, urls.profile_page(&row.username)],
        "links": links,
    });
    Ok(cacheable_json(
        "application/jrd+json; charset=utf-8",
        &body,
        false,
    ))
}

async fn host_meta(data: Data) -> HttpResponse {
    let base = Urls::new(&data.config).base().to_string();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <XRD xmlns=\"http://docs.oasis-open.org/ns/xri/xrd-1.0\">\n  \
         <Link rel=\"lrdd\" template=\"{base}/.well-known/webfinger?resource={{uri}}\"/>\n\
         </XRD>\n"
    );
    HttpResponse::Ok()
        .content_type("application/xrd+xml; charset=utf-8")
        .body(xml)
}

async fn nodeinfo_links(data: Data) -> HttpResponse {
    let base = Urls::new(&data.config).base().to_string();
    HttpResponse::Ok().json(json!({
        "links": [
            { "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": format!("{base}/nodeinfo/2.0") },
            { "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": format!("{base}/nodeinfo/2.1") },
        ]
    }))
}

async fn nodeinfo(path: aw::Path<String>, data: Data) -> Result<HttpResponse, Error> {
    let version = path.into_inner();
    if version != "2.0" && version != "2.1" {
        return Err(Error::NotFound);
    }
    let (local_actors, _) = data.db.run(db::actors::counts).await?;
    let local_posts = data.db.run(db::alerts::local_published_count).await?;
    // The instance actor and the publications' actors are not users.
    let users = (local_actors - 1 - crate::publications::PUBLICATIONS.len() as i64).max(0);
    let mut software = json!({ "name": "tocsin", "version": env!("CARGO_PKG_VERSION") });
    if version == "2.1" {
        software["repository"] = json!("https://github.com/tocsin-network/tocsin");
        software["homepage"] = json!(Urls::new(&data.config).base());
    }
    let body = json!({
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": { "inbound": [], "outbound": ["atom1.0", "rss2.0"] },
        "openRegistrations": false,
        "usage": {
            "users": { "total": users, "activeMonth": users, "activeHalfyear": users },
            "localPosts": local_posts
        },
        "metadata": {
            "nodeName": data.config.instance.name,
            "nodeDescription": data.config.instance.description,
        }
    });
    Ok(HttpResponse::Ok()
        .content_type(format!(
            "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/{version}#\""
        ))
        .json(body))
}

fn ordered_collection(
    id: url::Url,
    total: i64,
    items: Option<Vec<serde_json::Value>>,
) -> serde_json::Value {
    let mut c = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": id,
        "type": "OrderedCollection",
        "totalItems": total,
    });
    if let Some(items) = items {
        c["orderedItems"] = json!(items);
    }
    c
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

async fn outbox(
    request: HttpRequest,
    path: aw::Path<String>,
    query: aw::Query<PageQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let (name, page) = (path.into_inner(), query.page);
    read_cache::serve(&request, &data, outbox_answer(&data, name, page)).await
}

async fn outbox_answer(
    data: &Data,
    name: String,
    page: Option<i64>,
) -> Result<HttpResponse, Error> {
    let row = local_actor_row(data, name).await?;
    let urls = Urls::new(&data.config);
    let id = urls.actor_part(&row.username, "outbox");
    let actor_id = row.id;
    if let Some(publication) = crate::publications::find(&row.username) {
        return publication_outbox(data, publication.name, page).await;
    }
    // Feeds and campaigns publish what they announce.
    if row.kind == crate::curation::SERVICE || row.kind == crate::campaigns::GROUP {
        return feed_outbox(data, &row, page).await;
    }
    let total = data
        .db
        .run(move |conn| db::alerts::published_count(conn, actor_id))
        .await?;
    let Some(page) = page else {
        return Ok(outbox_head(&id, total));
    };
    if page < 1 {
        return Err(Error::BadRequest("page must be 1 or more".into()));
    }
    let size = data.config.alerts.page_size;
    let filter = db::alerts::AlertFilter {
        actor_id: Some(actor_id),
        ..Default::default()
    };
    let rows = data
        .db
        .run(move |conn| db::alerts::list(conn, &filter, size + 1, db::page_offset(page, size)))
        .await?;
    let actor = super::objects::actor::DbActor::new(row.clone())?;
    let mut items = Vec::new();
    for alert in rows.iter().take(size as usize) {
        let note = local_note(data, alert).await?;
        let mut create = super::activities::create::build(&urls, &actor, note);
        create["id"] = json!(format!("{}#create", alert.ap_id));
        if let Some(map) = create.as_object_mut() {
            map.remove("@context");
        }
        items.push(create);
    }
    let more = rows.len() as i64 > size;
    Ok(activity_json(&outbox_page(
        &id,
        note_context(&urls),
        (page, total, more),
        items,
    )))
}

/// The outbox of a feed or campaign actor: its boosts, as `Announce`s.
async fn feed_outbox(
    data: &Data,
    row: &ActorRow,
    page: Option<i64>,
) -> Result<HttpResponse, Error> {
    let urls = Urls::new(&data.config);
    let id = urls.actor_part(&row.username, "outbox");
    let feed_id = row.id;
    let total = data
        .db
        .run(move |conn| db::curation::boost_count(conn, feed_id))
        .await?;
    let Some(page) = page.filter(|p| *p >= 1) else {
        return Ok(outbox_head(&id, total));
    };
    let size = data.config.alerts.page_size;
    let rows = data
        .db
        .run(move |conn| {
            db::curation::boosts_of_feed(conn, feed_id, size + 1, db::page_offset(page, size))
        })
        .await?;
    let items: Vec<serde_json::Value> = rows
        .iter()
        .take(size as usize)
        .map(|(announce, alert)| {
            json!({
                "id": announce.ap_id,
                "type": "Announce",
                "actor": urls.actor(&row.username),
                "published": chrono::Utc.timestamp_millis_opt(announce.created_at).single()
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                "to": ["https://www.w3.org/ns/activitystreams#Public"],
                "object": alert.ap_id,
            })
        })
        .collect();
    let more = rows.len() as i64 > size;
    Ok(activity_json(&outbox_page(
        &id,
        json!("https://www.w3.org/ns/activitystreams"),
        (page, total, more),
        items,
    )))
}

/// An outbox without its items: the count and a link to the first page.
fn outbox_head(id: &url::Url, total: i64) -> HttpResponse {
    let mut c = ordered_collection(id.clone(), total, None);
    c["first"] = json!(format!("{id}?page=1"));
    activity_json(&c)
}

/// Page `page` of outbox `id` (`total` items in all; `more` when a next
/// page exists).
fn outbox_page(
    id: &url::Url,
    context: serde_json::Value,
    (page, total, more): (i64, i64, bool),
    items: Vec<serde_json::Value>,
) -> serde_json::Value {
    let mut c = json!({
        "@context": context,
        "id": format!("{id}?page={page}"),
        "type": "OrderedCollectionPage",
        "partOf": id,
        "totalItems": total,
        "orderedItems": items,
    });
    if more {
        c["next"] = json!(format!("{id}?page={}", page + 1));
    }
    if page > 1 {
        c["prev"] = json!(format!("{id}?page={}", page - 1));
    }
    c
}

/// The outbox of a publication's actor: the `Create` of each published
/// issue, latest first.
async fn publication_outbox(
    data: &Data,
    publication: &'static str,
    page: Option<i64>,
) -> Result<HttpResponse, Error> {
    let urls = Urls::new(&data.config);
    let id = urls.actor_part(publication, "outbox");
    let total = data
        .db
        .run(move |conn| db::publications::published_count(conn, publication))
        .await?;
    let Some(page) = page.filter(|p| *p >= 1) else {
        return Ok(outbox_head(&id, total));
    };
    let size = data.config.alerts.page_size;
    let base = urls.base().to_string();
    let taxonomy = web::pages::taxonomy(data)?;
    let (creates, more) = data
        .db
        .run(move |conn| {
            let issues = db::publications::published_page(
                conn,
                publication,
                size + 1,
                db::page_offset(page, size),
            )?;
            let more = issues.len() as i64 > size;
            let mut creates = Vec::new();
            for issue in issues.iter().take(size as usize) {
                let items = db::publications::items(conn, issue.id)?;
                let html = web::publication_pages::issue_html(issue, items, &taxonomy);
                let article = issue_wire::article(&base, issue, &html);
                let mut create = issue_wire::create(&base, issue, article);
                if let Some(map) = create.as_object_mut() {
                    map.remove("@context");
                }
                creates.push(create);
            }
            Ok((creates, more))
        })
        .await?;
    Ok(activity_json(&outbox_page(
        &id,
        json!(issue_wire::CONTEXT),
        (page, total, more),
        creates,
    )))
}

/// A published issue as an `Article`, for ActivityPub clients.
async fn issue_article(path: aw::Path<(String, i64)>, data: Data) -> Result<HttpResponse, Error> {
    let (publication, id) = path.into_inner();
    let (issue, items) = data
        .db
        .run(move |conn| {
            Ok((
                db::publications::issue(conn, id)?,
                db::publications::items(conn, id)?,
            ))
        })
        .await?;
    if issue.publication != publication || issue.state != db::publications::PUBLISHED {
        return Err(Error::NotFound);
    }
    let html = web::publication_pages::issue_html(&issue, items, &web::pages::taxonomy(&data)?);
    Ok(activity_json(&issue_wire::document(
        Urls::new(&data.config).base(),
        &issue,
        &html,
    )))
}

async fn followers(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let name = path.into_inner();
    read_cache::serve(&request, &data, followers_answer(&data, name)).await
}

async fn followers_answer(data: &Data, name: String) -> Result<HttpResponse, Error> {
    let row = local_actor_row(data, name).await?;
    let id = row.id;
    let total = data
        .db
        .run(move |conn| db::follows::follower_count(conn, id))
        .await?;
    // Like Mastodon, we publish the count but not who follows.
    Ok(activity_json(&ordered_collection(
        Urls::new(&data.config).actor_part(&row.username, "followers"),
        total,
        None,
    )))
}

async fn following(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let name = path.into_inner();
    read_cache::serve(&request, &data, following_answer(&data, name)).await
}

async fn following_answer(data: &Data, name: String) -> Result<HttpResponse, Error> {
    let row = local_actor_row(data, name).await?;
    let id = row.id;
    let following = data
        .db
        .run(move |conn| db::follows::following(conn, id))
        .await?;
    let items: Vec<_> = following
        .iter()
        .filter(|(_, state)| state == db::follows::ACCEPTED)
        .map(|(a, _)| json!(a.ap_id))
        .collect();
    Ok(activity_json(&ordered_collection(
        Urls::new(&data.config).actor_part(&row.username, "following"),
        items.len() as i64,
        Some(items),
    )))
}

async fn featured(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let name = path.into_inner();
    read_cache::serve(&request, &data, featured_answer(&data, name)).await
}

async fn featured_answer(data: &Data, name: String) -> Result<HttpResponse, Error> {
    let row = local_actor_row(data, name).await?;
    let filter = db::alerts::AlertFilter {
        actor_id: Some(row.id),
        pinned_only: true,
        ..Default::default()
    };
    let rows = data
        .db
        .run(move |conn| db::alerts::list(conn, &filter, 50, 0))
        .await?;
    let mut items = Vec::new();
    for alert in &rows {
        items.push(local_note(data, alert).await?);
    }
    let urls = Urls::new(&data.config);
    let mut c = ordered_collection(
        urls.actor_part(&row.username, "featured"),
        items.len() as i64,
        Some(items),
    );
    c["@context"] = note_context(&urls);
    Ok(activity_json(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn webfinger_resources_resolve_case_insensitively_by_host() {
        let mut config = Config::default();
        config.instance.domain = "alerts.ngo.example".into();
        let urls = Urls::new(&config);
        let d = "alerts.ngo.example";
        assert_eq!(
            webfinger_username("acct:Alerts@alerts.ngo.example", &urls, d).unwrap(),
            "Alerts"
        );
        assert_eq!(
            webfinger_username("acct:alerts@ALERTS.ngo.example", &urls, d).unwrap(),
            "alerts"
        );
        assert_eq!(
            webfinger_username("https://alerts.ngo.example/actors/alerts", &urls, d).unwrap(),
            "alerts"
        );
        assert_eq!(
            webfinger_username("https://alerts.ngo.example/@alerts", &urls, d).unwrap(),
            "alerts"
        );
        assert!(matches!(
            webfinger_username("acct:alerts@other.example", &urls, d),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            webfinger_username("acct:alerts", &urls, d),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            webfinger_username("nonsense", &urls, d),
            Err(Error::BadRequest(_))
        ));
        // Found by the fuzz smoke run: a `/` never makes a local username.
        assert!(matches!(
            webfinger_username("acct:alertp:/s@alerts.ngo.example", &urls, d),
            Err(Error::NotFound)
        ));
    }
}
