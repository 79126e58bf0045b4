//! Uploaded files: checked by their content (not their name or declared
//! type), stored under a content hash, served with their real type.

use crate::{error::Error, state::Data, web::api::authenticate};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Types an upload may have, as detected from its bytes, with the file
/// extension used to store it.
pub const ACCEPTED: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("application/pdf", "pdf"),
    ("audio/mpeg", "mp3"),
    ("audio/ogg", "ogg"),
    ("video/mp4", "mp4"),
    ("video/webm", "webm"),
];

/// Registers the upload and download routes.
pub fn configure(cfg: &mut aw::ServiceConfig, max_upload: usize) {
    cfg.service(
        aw::resource("/api/v1/media")
            .app_data(aw::PayloadConfig::new(max_upload))
            .route(aw::post().to(upload)),
    )
    .route("/media/{name}", aw::get().to(download));
}

/// The detected MIME type and extension of `bytes`, if accepted.
pub fn detect(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    let kind = infer::get(bytes)?;
    ACCEPTED
        .iter()
        .find(|(mime, _)| *mime == kind.mime_type())
        .copied()
}

fn media_dir(data: &Data) -> PathBuf {
    PathBuf::from(&data.config.alerts.media_dir)
}

/// The answer to an upload.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// Where the file is served; use it in an alert's `attachments`.
    pub url: String,
    /// Type detected from the content.
    pub media_type: String,
    /// Bytes.
    pub size: usize,
}

/// `POST /api/v1/media`
#[utoipa::path(post, path = "/api/v1/media", security(("bearer" = [])),
    request_body(content = Vec<u8>, description = "The file itself", content_type = "application/octet-stream"),
    responses((status = 201, body = Uploaded), (status = 401, body = crate::web::api::ErrorBody),
        (status = 413, description = "Larger than [alerts] max_upload_bytes"),
        (status = 422, description = "Content of a type not accepted", body = crate::web::api::ErrorBody)))]
pub async fn upload(
    request: HttpRequest,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    Ok(HttpResponse::Created().json(store(&data, body.to_vec()).await?))
}

/// Checks an upload's content and stores it under its hash; shared by the
/// API and the author pages.
pub async fn store(data: &Data, body: Vec<u8>) -> Result<Uploaded, Error> {
    if body.is_empty() {
        return Err(Error::Validation {
            field: "body".into(),
            message: "the upload is empty".into(),
        });
    }
    let (mime, ext) = detect(&body).ok_or_else(|| Error::Validation {
        field: "body".into(),
        message: format!(
            "the file's content is not one of the accepted types ({})",
            ACCEPTED
                .iter()
                .map(|(m, _)| *m)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })?;
    let name = format!("{}.{ext}", hex::encode(Sha256::digest(&body)));
    let dir = media_dir(data);
    let path = dir.join(&name);
    let size = body.len();
    let url = format!(
        "{}/media/{name}",
        crate::federation::Urls::new(&data.config).base()
    );
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        if !path.exists() {
            // Write then rename, so a crash never leaves half a file in place.
            let tmp = dir.join(format!(".{name}.part"));
            std::fs::write(&tmp, &body)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| Error::Internal(format!("storing the upload failed: {e}")))?;
    Ok(Uploaded {
        url,
        media_type: mime.to_string(),
        size,
    })
}

/// True for names we generate: 64 hex digits, a dot, a known extension.
fn valid_name(name: &str) -> bool {
    let Some((hash, ext)) = name.split_once('.') else {
        return false;
    };
    hash.len() == 64
        && hash.chars().all(|c| c.is_ascii_hexdigit())
        && ACCEPTED.iter().any(|(_, e)| *e == ext)
}

async fn download(path: aw::Path<String>, data: Data) -> Result<HttpResponse, Error> {
    let name = path.into_inner();
    if !valid_name(&name) {
        return Err(Error::NotFound);
    }
    let file = media_dir(&data).join(&name);
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(file))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|_| Error::NotFound)?;
    let (mime, _) = detect(&bytes).ok_or(Error::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; sandbox"))
        .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_the_type() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
        ];
        assert_eq!(detect(&png), Some(("image/png", "png")));
        assert_eq!(detect(b"%PDF-1.7\n..."), Some(("application/pdf", "pdf")));
        assert_eq!(detect(b"<html><script>alert(1)</script>"), None);
        assert_eq!(
            detect(b"MZ\x90\x00\x03\x00\x00\x00"),
            None,
            "executables are refused"
        );
    }

    #[test]
    fn only_generated_names_are_served() {
        let good = format!("{}.png", "a".repeat(64));
        assert!(valid_name(&good));
        assert!(!valid_name("../../etc/passwd"));
        assert!(!valid_name(&format!("{}.exe", "a".repeat(64))));
        assert!(!valid_name("short.png"));
    }
}
