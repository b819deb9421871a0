//! Relays (tiếp sóng): a scheduled relay item makes the node open the stream URL (Icecast,
//! Shoutcast or plain HTTP; MP3, AAC or Ogg) and play it for the scheduled span. A thread
//! of its own fetches and decodes into a short buffer the playout drains; a source that
//! dies or stalls is dialled again with backoff (1 s doubling to 10 s) while the span
//! lasts, with silence in between, so the playout never waits on the network. What it
//! got — how much of the span played, how many reconnects — goes into the play log.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use audio::AudioFormat;
use audio::decode::Decoder;
use audio::render::{ItemRenderer, Loudness};

/// A stream silent this long is dropped and dialled again.
const STALL: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Decoded audio held ahead of the playout (seconds).
const AHEAD_S: usize = 2;

#[derive(Default)]
struct Shared {
    samples: Mutex<VecDeque<f32>>,
    stop: AtomicBool,
    reconnects: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// One relay play: its stream thread and the audio it has brought.
pub struct RelayRenderer {
    shared: Arc<Shared>,
    channels: usize,
    /// Frames the playout took from the stream (the rest of the span was silence).
    played: u64,
    total: u64,
}

impl RelayRenderer {
    pub fn start(url: String, format: AudioFormat, loudness: Loudness) -> Self {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || stream_loop(&url, format, loudness, s));
        if let Err(e) = spawned {
            *shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                Some(format!("cannot start the relay: {e}"));
        }
        RelayRenderer {
            shared,
            channels: usize::from(format.channels.max(1)),
            played: 0,
            total: 0,
        }
    }

    /// `frames` frames: the stream's, or silence where it has none yet.
    pub fn fill(&mut self, buf: &mut Vec<f32>, frames: usize) {
        let want = frames * self.channels;
        let mut ring = self
            .shared
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let got = want.min(ring.len()) / self.channels * self.channels;
        buf.extend(ring.drain(..got));
        drop(ring);
        buf.resize(buf.len() + want - got, 0.0);
        self.played += (got / self.channels) as u64;
        self.total += frames as u64;
    }

    /// What the log says of it: the share of the span played, and the reconnects.
    pub fn summary(&self, rate: u32) -> (f64, String) {
        let share = match self.total {
            0 => 0.0,
            t => self.played as f64 / t as f64,
        };
        let reconnects = self.shared.reconnects.load(Ordering::Relaxed);
        let mut text = format!(
            "relay: {:.0} of {:.0} s played, {reconnects} reconnect{}",
            self.played as f64 / f64::from(rate),
            self.total as f64 / f64::from(rate),
            if reconnects == 1 { "" } else { "s" }
        );
        if let Some(e) = self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            text.push_str(&format!(" (last error: {e})"));
        }
        (share, text)
    }
}

impl Drop for RelayRenderer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// The stream thread: connect, decode into the buffer, and again after a failure.
fn stream_loop(url: &str, format: AudioFormat, loudness: Loudness, shared: Arc<Shared>) {
    let shared = &shared;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Arc::new(r),
        Err(e) => return note(shared, format!("relay runtime: {e}")),
    };
    let client = match reqwest::Client::builder().connect_timeout(STALL).build() {
        Ok(c) => c,
        Err(e) => return note(shared, format!("relay client: {e}")),
    };
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        if attempt > 0 {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        attempt += 1;
        let mut brought_audio = false;
        tracing::info!(%url, attempt, "relay: dialling");
        // The timeout is made inside the runtime (a timer needs its context).
        match runtime.block_on(async { tokio::time::timeout(STALL, client.get(url).send()).await })
        {
            Ok(Ok(resp)) if resp.status().is_success() => {
                tracing::info!(%url, "relay: connected");
                let reader = BodyReader {
                    runtime: runtime.clone(),
                    resp: Mutex::new(resp),
                    pending: Vec::new(),
                    at: 0,
                    shared: shared.clone(),
                };
                if let Err(e) = decode_into(reader, format, loudness, shared, &mut brought_audio) {
                    note(shared, e);
                }
            }
            Ok(Ok(resp)) => note(shared, format!("the stream answered {}", resp.status())),
            Ok(Err(e)) => note(shared, format!("cannot reach the stream: {e}")),
            Err(_) => note(shared, "the stream did not answer".into()),
        }
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        // A connection that brought audio resets the backoff.
        if brought_audio {
            backoff = FIRST_BACKOFF;
        }
        let mut slept = Duration::ZERO;
        while slept < backoff && !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            slept += Duration::from_millis(100);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn note(shared: &Shared, e: String) {
    tracing::warn!("relay: {e}");
    *shared
        .last_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(e);
}

/// Decodes one connection's stream into the buffer until it ends, fails or is stopped;
/// `brought_audio` says whether it got any.
fn decode_into(
    reader: BodyReader,
    format: AudioFormat,
    loudness: Loudness,
    shared: &Shared,
    brought_audio: &mut bool,
) -> Result<(), String> {
    let decoder = Decoder::from_stream(reader).map_err(|e| e.to_string())?;
    let mut renderer = ItemRenderer::new(decoder, format, loudness).map_err(|e| e.to_string())?;
    let cap = AHEAD_S * format.sample_rate as usize * usize::from(format.channels);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Hold back while the buffer is full: a live stream comes in real time anyway.
        while shared.samples.lock().map(|r| r.len()).unwrap_or(0) >= cap {
            if shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        match renderer.next_block() {
            Ok(Some(block)) => {
                *brought_audio = true;
                shared
                    .samples
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(block.iter().copied());
            }
            Ok(None) => return Err("the stream ended".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A response body read with blocking calls on its runtime, with a stall limit.
struct BodyReader {
    runtime: Arc<tokio::runtime::Runtime>,
    /// Only this thread reads it; the lock makes the reader `Sync` as decoders need.
    resp: Mutex<reqwest::Response>,
    pending: Vec<u8>,
    at: usize,
    shared: Arc<Shared>,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.pending.len() {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(0);
            }
            let resp = self.resp.get_mut().unwrap_or_else(PoisonError::into_inner);
            match self
                .runtime
                .block_on(async { tokio::time::timeout(STALL, resp.chunk()).await })
            {
                Ok(Ok(Some(chunk))) => {
                    self.pending = chunk.to_vec();
                    self.at = 0;
                }
                Ok(Ok(None)) => return Ok(0),
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Err(std::io::Error::other("the stream stalled")),
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
