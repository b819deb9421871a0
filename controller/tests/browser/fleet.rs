//! The fleet page follows the fleet: a node cut off goes offline on the page (its row and
//! its dot on the map) without a reload.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_node_going_offline_shows_on_the_fleet_page_without_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_controller, base) = start_controller_with(&data, &["--node-offline-after-s", "15"]);
    let (_driver, c) = start_browser(&dir.path().join("profile")).await;
    login(&c, &base, "kythuat").await;
    c.goto(&format!("{base}/ui/fleet")).await.unwrap();
    wait_text(&c, "fleet-map").await;
    c.execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    let status = |id: i64| {
        let c = c.clone();
        async move {
            let css = format!("#fleet-table tr[data-node='{id}']");
            match c.find(Locator::Css(&css)).await {
                Ok(row) => row
                    .attr("data-status")
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                Err(_) => String::new(),
            }
        }
    };
    // Both demo nodes come online by themselves (the page refreshes its table).
    let started = Instant::now();
    while status(1).await == "offline" || status(2).await == "offline" || status(2).await.is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "nodes never online"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Cut node 2 off (its token revoked): it goes silent, and the page says so.
    let api = api_login(&base, "kythuat").await;
    let res = api
        .0
        .post(format!("{base}/api/v1/nodes/2/revoke"))
        .bearer_auth(&api.1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let started = Instant::now();
    while status(2).await != "offline" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node 2 never offline on the page"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let dot = c
        .find(Locator::Css("#fleet-map a[href='/ui/nodes/2'] circle"))
        .await
        .unwrap();
    assert_eq!(
        dot.attr("data-status").await.unwrap().as_deref(),
        Some("offline")
    );
    assert_ne!(status(1).await, "offline");
    let first = c
        .find(Locator::Css("#fleet-table tbody tr"))
        .await
        .unwrap()
        .attr("data-node")
        .await
        .unwrap();
    assert_eq!(first.as_deref(), Some("2"), "problems first");
    let still = c
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(still, json!(true), "the page reloaded");
    c.close().await.unwrap();
}
