//! Stored HTML is sanitised again on the way out: an alert row holding a
//! script (an old version, an import, a restore) renders without it.

use crate::common::{alert_values, html_page, postgres_available, Backend, TestInstance};
use tocsin::db::{
    self,
    alerts::{insert, AlertValues},
};

async fn stored_html_is_sanitised_again_on_the_way_out(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let ap_id = format!("{}/alerts/{}", i.base(), uuid::Uuid::new_v4());
    let mut conn = i.server.state.db.conn().unwrap();
    let actor = db::actors::local_by_username(&mut conn, "alerts")
        .unwrap()
        .unwrap()
        .id;
    insert(
        &mut conn,
        AlertValues {
            title: "Stored before sanitising".into(),
            content_html: "<p>Visible body</p><script>alert(1)</script>\
                           <img src=\"x\" onerror=\"alert(2)\"><a href=\"javascript:alert(3)\">x</a>"
                .into(),
            ..alert_values(ap_id.clone(), actor, true)
        },
    )
    .unwrap();
    drop(conn);
    let page = html_page(&ap_id).await;
    assert!(page.contains("Visible body"), "{page}");
    for bad in ["<script>alert(1)", "onerror", "javascript:alert"] {
        assert!(!page.contains(bad), "{bad} reached the page");
    }
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_html_is_sanitised_again_on_the_way_out_sqlite() {
    stored_html_is_sanitised_again_on_the_way_out(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_html_is_sanitised_again_on_the_way_out_postgres() {
    if postgres_available() {
        stored_html_is_sanitised_again_on_the_way_out(Backend::Postgres).await;
    }
}
