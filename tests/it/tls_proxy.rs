//! Tocsin behind a real nginx terminating TLS on loopback, with a
//! certificate made by the test: the actor is fetched over https with
//! https ids whatever the proxy forwards, an independent instance follows
//! through the proxy, and `tocsin doctor` passes against the public URL.
//! Skipped (with a message) when nginx is not installed, unless
//! TOCSIN_REQUIRE_NGINX=1 (CI).

use crate::{
    common::{client, eventually, prepare, Backend, TestInstance},
    follow::follow_state,
};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::Duration,
};
use tocsin::federation::activities::follow::{follow_remote, local_actor};

fn nginx_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()]);
    let found = candidates
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("TOCSIN_REQUIRE_NGINX").as_deref() == Ok("1") {
            panic!("nginx is required (TOCSIN_REQUIRE_NGINX=1) but not installed");
        }
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx)");
    }
    found
}

/// Runs openssl in `dir`, so file names can be relative.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a certificate for localhost and 127.0.0.1 signed by it
/// (a CA certificate cannot serve as its own end-entity certificate).
/// Returns (CA file, certificate, key).
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let new_key = ["-newkey", "rsa:2048", "-nodes", "-keyout"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &new_key,
            &[
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Tocsin test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &new_key,
            &["site.key", "-out", "site.csr", "-subj", "/CN=localhost"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("site.ext"),
        "subjectAltName = DNS:localhost, IP:127.0.0.1\nbasicConstraints = CA:FALSE\n\
         keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "site.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "site.pem",
            "-extfile",
            "site.ext",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("site.pem"),
        dir.join("site.key"),
    )
}

/// nginx in the foreground, stopped when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts nginx on 127.0.0.1:`port` with TLS, proxying to `upstream`. The
/// configuration is deliberately careless in the ways proxies are: it does
/// not pass the Host header (Tocsin receives `127.0.0.1:<upstream port>`)
/// and forwards a misleading X-Forwarded-Host.
fn start_nginx(
    nginx: &Path,
    dir: &Path,
    port: u16,
    upstream: std::net::SocketAddr,
    cert: &Path,
    key: &Path,
) -> Nginx {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name localhost;\n\
         ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
         client_max_body_size 1m;\n    location / {{\n\
         proxy_pass http://{upstream};\n\
         proxy_set_header X-Forwarded-Host evil.example;\n\
         proxy_set_header X-Forwarded-Proto http;\n    }}\n  }}\n}}\n",
        cert = cert.display(),
        key = key.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .spawn()
        .expect("start nginx");
    Nginx(child)
}

async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

fn https_client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_with_tls_ids_are_https_and_a_follow_completes() {
    let Some(nginx) = nginx_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certificates(dir.path());
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let public = format!("localhost:{port}");

    // The instance behind the proxy: public https://localhost:<nginx port>.
    let mut behind = prepare(Backend::Sqlite);
    behind.config.instance.domain = public.clone();
    behind.config.instance.scheme = "https".into();
    let b = TestInstance::start_prepared(behind).await;
    let _nginx = start_nginx(&nginx, dir.path(), port, b.server.addr, &cert, &key);
    let https = https_client(&ca);
    let actor_url = format!("https://{public}/actors/alerts");
    assert!(
        eventually(Duration::from_secs(10), || async {
            https.get(&actor_url).send().await.is_ok()
        })
        .await,
        "nginx answers over TLS: {}",
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );

    let actor = json_of(
        https
            .get(&actor_url)
            .header("Accept", "application/activity+json"),
    )
    .await;
    assert_eq!(actor["id"], actor_url.as_str());
    assert_eq!(actor["inbox"], format!("{actor_url}/inbox").as_str());
    assert_eq!(
        actor["publicKey"]["id"],
        format!("{actor_url}#main-key").as_str()
    );
    let jrd = json_of(https.get(format!(
        "https://{public}/.well-known/webfinger?resource=acct:alerts@{public}"
    )))
    .await;
    assert_eq!(jrd["subject"], format!("acct:alerts@{public}").as_str());
    // Plain http straight to Tocsin's port gives the same https ids.
    let direct = json_of(
        client()
            .get(format!("http://{}/actors/alerts", b.server.addr))
            .header("Accept", "application/activity+json")
            .header("X-Forwarded-Host", "evil.example"),
    )
    .await;
    assert_eq!(direct["id"], actor_url.as_str());

    // An independent instance that trusts the test CA follows through the
    // proxy; its signed Follow arrives with the Host nginx rewrote.
    let mut peer = prepare(Backend::Sqlite);
    peer.config.federation.extra_ca_file = ca.display().to_string();
    let a = TestInstance::start_prepared(peer).await;
    let us = local_actor(&a.server.data, "alerts").await.unwrap();
    // By actor URL: with the loopback test switches on, activitypub_federation
    // looks WebFinger up over plain http (its debug mode), which the TLS
    // port refuses; WebFinger over https is checked above.
    let target = follow_remote(&a.server.data, &us, &actor_url)
        .await
        .expect("actor fetched over https through nginx");
    assert_eq!(target.ap_id.as_str(), actor_url);
    let a_actor = us.ap_id.to_string();
    let accepted = eventually(Duration::from_secs(20), || async {
        follow_state(&a, &a_actor, &actor_url).await.as_deref() == Some("accepted")
    })
    .await;
    assert!(
        accepted,
        "the follower recorded the Accept; nginx log: {}",
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );
    assert_eq!(
        follow_state(&b, &a_actor, &actor_url).await.as_deref(),
        Some("accepted")
    );

    // `tocsin doctor` against the public https URL passes.
    let mut config = (*b.server.state.config).clone();
    config.federation.extra_ca_file = ca.display().to_string();
    let config_file = dir.path().join("doctor.toml");
    std::fs::write(&config_file, toml::to_string(&config).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .env_remove("TOCSIN_CONFIG")
        .env("TOCSIN_LOG", "warn")
        .arg("--config")
        .arg(&config_file)
        .args([
            "doctor",
            "--remote",
            &format!("{}/.well-known/nodeinfo", a.base()),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "ok    webfinger",
        "ok    nodeinfo",
        "ok    actor",
        "ok    clock",
    ] {
        assert!(stdout.contains(check), "{check}:\n{stdout}");
    }
    a.stop().await;
    b.stop().await;
}

/// The covered `host` is our public domain: a request signed for another
/// host is refused even when its `Host` header matches the signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_made_for_another_host_is_refused() {
    use crate::common::peer::{fixture, FakePeer};
    let i = TestInstance::start(Backend::Sqlite).await;
    let peer = FakePeer::start().await;
    peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let key_id = format!("{}/users/alice#main-key", peer.base);
    let follow = peer.rewrite(
        &fixture("mastodon/follow.json"),
        "mastodon.example",
        &i.base(),
    );
    let other_host = format!("http://{}/inbox", i.server.addr);
    let (status, _) = peer.post_signed(&other_host, &follow, &key_id).await;
    assert_eq!(status, 401, "signed for {other_host}, not our domain");
    let (status, body) = peer
        .post_signed(&format!("{}/inbox", i.base()), &follow, &key_id)
        .await;
    assert_eq!(status, 202, "{body}");
    peer.stop().await;
    i.stop().await;
}
