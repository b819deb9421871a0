//! The impairing proxy itself: delay and jitter within bounds, order kept, stalls,
//! partitions that hold bytes and heal, cuts that close. The whole-system tests of bad
//! links stand on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use loa_tests::impair::{Impairment, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// An echo server on loopback.
async fn echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Sends `byte` and waits for it to come back; the round trip.
async fn round_trip(s: &mut TcpStream, byte: u8) -> Duration {
    let start = Instant::now();
    s.write_all(&[byte]).await.unwrap();
    let mut got = [0u8; 1];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(got[0], byte, "order kept");
    start.elapsed()
}

#[tokio::test]
async fn delay_and_jitter_stay_in_bounds_and_keep_order() {
    let proxy = Proxy::start(echo().await, Impairment::jittery(30, 10), 7).await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut trips = Vec::new();
    for i in 0..20u8 {
        trips.push(round_trip(&mut s, i).await);
    }
    let (min, max) = (trips.iter().min().unwrap(), trips.iter().max().unwrap());
    // Two crossings of 30 ± 10 ms each.
    assert!(*min >= Duration::from_millis(40), "{trips:?}");
    assert!(*max <= Duration::from_millis(120), "{trips:?}");
    assert!(
        *max - *min >= Duration::from_millis(5),
        "jitter applied: {trips:?}"
    );
    // A burst keeps its order through the jitter.
    let burst: Vec<u8> = (0..=255u8).collect();
    for b in &burst {
        s.write_all(&[*b]).await.unwrap();
    }
    let mut back = vec![0u8; burst.len()];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(back, burst);
}

#[tokio::test]
async fn partitions_hold_bytes_until_healed_and_cuts_close() {
    let proxy = Proxy::start(echo().await, Impairment::default(), 1).await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    round_trip(&mut s, 1).await;
    proxy.partition();
    s.write_all(&[2]).await.unwrap();
    let mut got = [0u8; 1];
    assert!(
        timeout(Duration::from_millis(300), s.read_exact(&mut got))
            .await
            .is_err(),
        "nothing crosses a partition"
    );
    proxy.heal();
    timeout(Duration::from_secs(2), s.read_exact(&mut got))
        .await
        .expect("the held byte arrives once healed")
        .unwrap();
    assert_eq!(got[0], 2);
    proxy.cut();
    let n = timeout(Duration::from_secs(2), s.read(&mut got))
        .await
        .expect("a cut closes the connection");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // New connections work after a cut.
    let mut again = TcpStream::connect(proxy.addr).await.unwrap();
    round_trip(&mut again, 3).await;
}

#[tokio::test]
async fn stalls_hold_traffic_then_release_it_at_once() {
    let imp = Impairment {
        stall_every: Some(Duration::from_millis(400)),
        stall_for: Duration::from_millis(200),
        ..Impairment::default()
    };
    let proxy = Proxy::start(echo().await, imp, 3).await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let mut trips = Vec::new();
    let start = Instant::now();
    let mut i = 0u8;
    while start.elapsed() < Duration::from_millis(1200) {
        trips.push(round_trip(&mut s, i).await);
        i = i.wrapping_add(1);
    }
    let stalled = trips
        .iter()
        .filter(|t| **t >= Duration::from_millis(50))
        .count();
    let fast = trips
        .iter()
        .filter(|t| **t < Duration::from_millis(10))
        .count();
    assert!(stalled >= 2, "some trips waited out a stall: {trips:?}");
    assert!(fast >= 10, "between stalls traffic flows: {trips:?}");
}
