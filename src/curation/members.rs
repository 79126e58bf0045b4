//! The member directory: remote organisations this instance follows as
//! members, with their region and countries, published as a collection so
//! hubs and readers can discover (and sync) them.

use crate::{
    db,
    error::Error,
    federation::{
        activities::follow::{follow_remote, resolve_actor},
        objects::actor::DbActor,
    },
    state::Data,
};

/// Follows `handle` as `us` and records it as a member.
pub async fn add(
    data: &Data,
    us: &DbActor,
    handle: &str,
    region: Option<String>,
    countries: Vec<String>,
) -> Result<DbActor, Error> {
    let countries: Vec<String> = countries
        .iter()
        .map(|c| c.trim().to_uppercase())
        .filter(|c| !c.is_empty())
        .collect();
    let target = follow_remote(data, us, handle).await?;
    let id = target.id;
    data.db
        .run(move |conn| db::curation::upsert_member(conn, id, region.as_deref(), &countries))
        .await?;
    Ok(target)
}

/// Removes `handle` from the directory (the follow stays; unfollow
/// separately if wanted).
pub async fn remove(data: &Data, handle: &str) -> Result<bool, Error> {
    let target = resolve_actor(data, handle).await?;
    let id = target.id;
    Ok(data
        .db
        .run(move |conn| db::curation::remove_member(conn, id))
        .await?)
}

/// Follows every member listed in another instance's directory collection
/// (`<base>/members`), keeping their region and countries.
pub async fn sync(
    data: &Data,
    us: &DbActor,
    directory: &url::Url,
) -> Result<(usize, Vec<String>), Error> {
    let fetched =
        activitypub_federation::fetch::fetch_object_http::<_, serde_json::Value>(directory, data)
            .await?
            .object;
    let items = fetched["orderedItems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut added = 0;
    let mut failed = Vec::new();
    for item in items {
        let Some(id) = item["id"].as_str().or_else(|| item.as_str()) else {
            continue;
        };
        let region = item["region"].as_str().map(str::to_string);
        let countries: Vec<String> = item["countries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if data.config.instance.domain
            == url::Url::parse(id)
                .map(|u| u.authority().to_string())
                .unwrap_or_default()
        {
            continue;
        }
        match add(data, us, id, region, countries).await {
            Ok(_) => added += 1,
            Err(e) => failed.push(format!("{id}: {e}")),
        }
    }
    Ok((added, failed))
}
