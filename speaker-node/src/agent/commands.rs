//! Remote commands a technician sends through the controller: each ends in one
//! `CommandDone` for the link, and a heartbeat a second later so the effect shows in the
//! CMS at once rather than at the next heartbeat.

use std::time::Duration;

use protocol::link::{Command, NodeMsg};

use super::Exit;
use super::owner::{AgentCmd, AgentCore, ToLink, blocking};
use super::playout::{Job, PlayKey, PlayoutCmd, Segment};

/// A queued command play starts this long after the command (time for the output to
/// take it).
const COMMAND_LEAD_NS: i64 = 500_000_000;
/// ...and may start up to this late.
const COMMAND_WINDOW_NS: i64 = 60_000_000_000;

/// An approved item to play at once (`play_now`).
#[derive(Debug, Clone)]
pub struct PlayNow {
    pub content_id: i64,
    pub sha256: String,
    pub gain_db: f32,
    pub duration_ms: u64,
}

impl AgentCore {
    /// Runs a remote command; `play_now` of a blob not in the cache finishes once the
    /// fetch does ([`AgentCmd::PlayNowReady`]).
    pub fn remote(&mut self, id: u64, command: Command) {
        tracing::info!(id, ?command, "command");
        let result: Result<String, String> = match command {
            Command::SetVolume { volume } => self.set_volume(volume.min(100)),
            Command::Stop => {
                self.to_playout(PlayoutCmd::Stop);
                Ok("stopped".into())
            }
            Command::PlayNow {
                content_id,
                sha256,
                gain_db,
                duration_ms,
            } => {
                let play = PlayNow {
                    content_id,
                    sha256,
                    gain_db,
                    duration_ms,
                };
                if !self.cache.has(&play.sha256) {
                    self.fetch_for(id, play);
                    return;
                }
                Ok(self.play_now(id, play))
            }
            Command::TestTone { seconds } => {
                let ms = u64::from(seconds.clamp(1, 60)) * 1000;
                self.queue_now(id, vec![Segment::Tone { ms }], None, ms);
                Ok(format!("{seconds} s test tone"))
            }
            Command::Resync => {
                self.links.fetch_now.notify_one();
                self.tick(true);
                Ok("resyncing".into())
            }
            Command::Restart => {
                let _ = self.links.exit.send(Some(Exit::Restart));
                Ok("restarting".into())
            }
        };
        self.done(id, result);
    }

    fn done(&self, id: u64, result: Result<String, String>) {
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        self.to_link(ToLink::Send(NodeMsg::CommandDone { id, ok, message }));
        let handle = self.links.handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            handle.send(AgentCmd::Heartbeat);
        });
    }

    fn set_volume(&mut self, volume: u8) -> Result<String, String> {
        self.to_playout(PlayoutCmd::SetVolume(volume));
        let mut s = self.state.settings();
        s.volume = Some(volume);
        blocking(|| self.state.save_settings(&s))
            .map(|()| format!("volume {volume}"))
            .map_err(|e| e.to_string())
    }

    /// Fetches the blob beside the owner; the result comes back as a message.
    fn fetch_for(&self, id: u64, play: PlayNow) {
        let fetcher = self.fetcher.clone();
        let handle = self.links.handle.clone();
        tokio::spawn(async move {
            let fetched = fetcher.fetch(&play.sha256).await.map_err(|e| e.to_string());
            handle.send(AgentCmd::PlayNowReady { id, play, fetched });
        });
    }

    pub(super) fn play_now_ready(&mut self, id: u64, play: PlayNow, fetched: Result<(), String>) {
        let result = fetched.map(|()| self.play_now(id, play));
        self.done(id, result);
    }

    fn play_now(&mut self, id: u64, play: PlayNow) -> String {
        let seg = Segment::Audio {
            content_id: play.content_id,
            path: self.cache.path_of(&play.sha256),
            sha256: play.sha256,
            gain_db: play.gain_db,
        };
        self.queue_now(id, vec![seg], Some(play.content_id), play.duration_ms);
        format!("playing content {}", play.content_id)
    }

    /// A job starting half a second from now.
    fn queue_now(&self, id: u64, segments: Vec<Segment>, content_id: Option<i64>, nominal_ms: u64) {
        let start = self.clock.controller_ns() + COMMAND_LEAD_NS;
        self.to_playout(PlayoutCmd::Queue(Job {
            key: PlayKey {
                schedule_id: 0,
                scheduled_at_ns: id as i64,
                attempt: 0,
            },
            schedule_id: None,
            scheduled_at_ns: Some(start),
            start_ns: start,
            deadline_ns: start + COMMAND_WINDOW_NS,
            segments,
            content_id,
            volume: 100,
            nominal_ms,
            emergency: false,
        }));
    }
}
