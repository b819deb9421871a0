//! Live ingest, Icecast style: a broadcast tool (ffmpeg, BUTT, Liquidsoap, Mixxx) sends
//! MP3, AAC or Ogg to `PUT /live/{village_id}` (or the older `SOURCE` method) with HTTP
//! basic auth `source:PASSWORD`. The controller's connection loop hands such connections
//! here ([`is_source`]): their bodies have no framing and run until the tool hangs up.
//! The controller decodes what arrives (the node's own decoder, fed as the body streams
//! in), mixes it to mono, resamples it to 48 kHz, encodes 20 ms Opus frames and stamps
//! each with the instant it is to leave every node's output: the moment it was encoded
//! plus one fleet-wide buffer. Two frames go out per binary link message to the village's
//! nodes. The session itself is a schedule (`Cms::start_live`): nodes play it as any other
//! play, at its priority, and log it.
//!
//! Pacing: a source faster than real time is held back (its TCP stream waits); a source
//! that stalls leaves a gap and resumes at the buffer's distance, never behind. A source
//! that ends (or drops) ends the session once its last frame has played, after a short
//! grace. A second source on a busy mount is refused with 409.

mod encode;
mod mic;
mod source;

pub use mic::{MicQuery, mic_filter};
pub use source::{handshake, is_source, serve_source};

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use audio::voice;
use protocol::schedule::Priority;
use tokio::sync::mpsc;
use warp::http::StatusCode;

use crate::hub::Hub;

/// After the source ends, the session stays this long past its last frame.
const END_GRACE: Duration = Duration::from_secs(2);
/// How often a session on air checks that it was not ended from elsewhere.
const ENDED_POLL: Duration = Duration::from_millis(500);
/// Body chunks queued between the socket and the decoder.
const QUEUE: usize = 64;

/// Live ingest settings.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// `source:PASSWORD` on the mount; `None`: live ingest is off (403).
    pub source_password: Option<String>,
    /// `source:PASSWORD` of sources at emergency level; `None`: none are.
    pub emergency_source_password: Option<String>,
    /// Encode-to-output distance every node keeps (ms).
    pub buffer_ms: u64,
    pub bitrate: i32,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            source_password: None,
            emergency_source_password: None,
            buffer_ms: 200,
            bitrate: voice::BITRATE,
        }
    }
}

/// Villages on air: a source holds its villages' mounts until it ends. A source of a
/// higher priority may take a held mount (an approver speaking at emergency level over an
/// Icecast relay); the nodes' resolver then plays the higher one.
#[derive(Default)]
pub struct Mounts {
    busy: Mutex<Vec<Mount>>,
    next: std::sync::atomic::AtomicU64,
}

struct Mount {
    token: u64,
    villages: Vec<i64>,
    priority: Priority,
}

impl Mounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Mount>> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the villages' mounts, unless one is held at this priority or higher; the
    /// token gives them back.
    fn take(&self, villages: &[i64], priority: Priority) -> Option<u64> {
        let mut busy = self.lock();
        let held = busy
            .iter()
            .any(|m| m.priority >= priority && m.villages.iter().any(|v| villages.contains(v)));
        if held {
            return None;
        }
        let token = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        busy.push(Mount {
            token,
            villages: villages.to_vec(),
            priority,
        });
        Some(token)
    }

    fn free(&self, token: u64) {
        self.lock().retain(|m| m.token != token);
    }
}

/// Why a source is refused: the status and the message for it.
type Refusal = (StatusCode, String);

fn refusal(e: cms::CmsError) -> Refusal {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, e.message(cms::i18n::Lang::En))
}

/// Carries a started session's audio to its nodes until the source ends, lets the last
/// frames play out, then ends the session everywhere.
async fn carry(hub: Arc<Hub>, start: cms::LiveStart, chunks_rx: mpsc::Receiver<bytes::Bytes>) {
    let config = hub.live_config().clone();
    let session = start.session.id;
    let sessions = hub.sessions().clone();
    let clock = hub.clock_arc();
    let nodes = start.nodes;
    // Nodes linked through a broker hear it on their villages' topics, once per village.
    let broker = match hub.broker() {
        Some(gw) => {
            let slug = hub
                .cms()
                .commune(start.session.commune_id)
                .await
                .map(|c| c.slug);
            match slug {
                Ok(slug) => Some((gw.clone(), gw.live_topics(&slug, &start.session.villages))),
                Err(e) => {
                    tracing::warn!(session, "live over the broker: {e}");
                    None
                }
            }
        }
        None => None,
    };
    // A session ended from elsewhere (its emergency stopped through the API) lets its
    // source go: the encoder stops, the source's connection closes.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let (hub, stop) = (hub.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ENDED_POLL).await;
                if !hub.cms().live_on_air(session).await.unwrap_or(true) {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            }
        })
    };
    let stopping = stop.clone();
    let encoded = tokio::task::spawn_blocking(move || {
        encode::encode_loop(
            chunks_rx,
            session as u32,
            &config,
            clock.as_ref(),
            &stopping,
            |packet| {
                if let Some((gw, topics)) = &broker {
                    gw.publish_live(topics, &packet);
                }
                sessions.send_live(&nodes, &Arc::new(packet));
            },
        )
    })
    .await;
    watch.abort();
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(session, "live session ended from the API: source let go");
        return;
    }
    let (reason, last_due_ns) = match encoded {
        Ok(Ok(last)) => ("the source ended".to_string(), last),
        Ok(Err((e, last))) => (format!("the source's audio: {e}"), last),
        Err(e) => (format!("the encoder failed: {e}"), None),
    };
    let now = hub.clock_arc().now_ns();
    let tail = last_due_ns.map_or(0, |due| (due - now).max(0) as u64);
    tokio::time::sleep(Duration::from_nanos(tail) + END_GRACE).await;
    if let Err(e) = hub.cms().end_live(session, &reason).await {
        tracing::error!(session, "cannot end the live session: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_is_held_unless_a_higher_priority_comes() {
        let m = Mounts::default();
        let a = m.take(&[1, 2], Priority::Priority).unwrap();
        assert!(m.take(&[2], Priority::Priority).is_none(), "busy");
        assert!(m.take(&[2], Priority::Normal).is_none(), "lower");
        assert!(
            m.take(&[3], Priority::Priority).is_some(),
            "another village"
        );
        let e = m.take(&[2], Priority::Emergency).unwrap();
        assert!(
            m.take(&[2], Priority::Emergency).is_none(),
            "one emergency at a time"
        );
        m.free(e);
        m.free(a);
        assert!(m.take(&[1, 2], Priority::Priority).is_some());
    }
}
