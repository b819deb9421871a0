//! A sound card through cpal (ALSA on Linux, so also PulseAudio/PipeWire via their ALSA
//! plugins).
//!
//! The decode thread writes into a lock-free SPSC ring (rtrb); the real-time callback only
//! copies out of it, converts, and bumps atomics: it never blocks, allocates or locks.
//! A callback that finds too little while an item plays fills silence and counts an
//! underrun.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, OutputCallbackInfo, SampleFormat, SizedSample, StreamConfig};
use rtrb::{Consumer, Producer, RingBuffer};

use super::{AudioFormat, DeviceInfo, Sink, SinkStats};
use crate::Error;

/// How much audio the ring holds. Enough to ride out a slow disk or a busy core on a
/// small board; also how far the decoder runs ahead.
const RING_SECONDS: f32 = 0.5;
/// Requested device period (the device buffers two). Larger periods mean fewer wake-ups,
/// which is most of the CPU a node spends while playing (see BENCHMARKS.md); 100 ms still
/// lets a stop or an emergency cut in within a quarter second. Start times do not depend
/// on it: they are aimed using the latency the device reports.
const PERIOD_SECONDS: f32 = 0.100;
/// Longest a stuck device may hold `finish` before it gives up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a full ring may go without the device taking a sample.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared with the real-time callback: atomics only.
#[derive(Default)]
struct Shared {
    /// An item is playing: an empty ring now is an underrun, not the end.
    active: AtomicBool,
    underruns: AtomicU64,
    /// Output latency reported by the device (callback -> DAC), nanoseconds.
    latency_ns: AtomicU64,
    /// Frames of silence the callback has written in all (underruns and after the end).
    silence_frames: AtomicU64,
    /// The largest callback seen, in frames: how much the device asks for at once.
    max_callback_frames: AtomicU64,
    /// The first fatal stream error (device gone); the sink fails its next write with it.
    failed: OnceLock<String>,
    /// Errors the stream recovered from (xruns, a sound server's hiccups).
    glitches: AtomicU64,
    /// Ring frames the callback had read before its latest run...
    cb_read_frames: AtomicU64,
    /// ...and when the first of that run's frames leaves the DAC, ns after [`base`]. Written
    /// in that order, read back to front and checked (a seqlock without the lock).
    cb_leaves_ns: AtomicU64,
}

/// The process's reference instant for callback times.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

pub struct DeviceSink {
    stream: cpal::Stream,
    producer: Producer<f32>,
    shared: Arc<Shared>,
    format: AudioFormat,
    capacity: usize,
    started: bool,
    /// Frames put into the ring in all.
    written_frames: u64,
}

pub(super) fn open(name: Option<&str>, preferred: AudioFormat) -> Result<Box<dyn Sink>, Error> {
    // alsa-lib prints its own complaints to stderr; collect them for our one-line message.
    let alsa_log = alsa::Output::local_error_handler().ok();
    let result = DeviceSink::open(name, preferred);
    result
        .map(|s| Box::new(s) as Box<dyn Sink>)
        .map_err(|e| with_alsa_detail(e, alsa_log))
}

fn with_alsa_detail(
    err: Error,
    log: Option<std::rc::Rc<std::cell::RefCell<alsa::Output>>>,
) -> Error {
    let text = log.map(|l| {
        l.borrow()
            .buffer_string(|b| String::from_utf8_lossy(b).into_owned())
    });
    let detail = text
        .and_then(|t| t.lines().last().map(|l| l.trim().to_string()))
        .filter(|d| !d.is_empty());
    match (err, detail) {
        (Error::Output(msg), Some(d)) if !msg.contains(&d) => Error::Output(format!("{msg} ({d})")),
        (err, _) => err,
    }
}

/// Finds the device to open. With no name: the default device of the default host, which
/// is PulseAudio (native protocol) when a server is reachable, else ALSA. A name is a cpal
/// device id as `speaker-node devices` prints it (`alsa:hw:0,0`, `pulseaudio:out`), an id
/// without its host, or a device's description.
fn find_device(name: Option<&str>) -> Result<cpal::Device, Error> {
    let Some(name) = name else {
        return cpal::default_host().default_output_device().ok_or_else(|| {
            Error::Output(
                "no default audio output device (is a sound card or PulseAudio present?)".into(),
            )
        });
    };
    let host = match name.parse::<cpal::DeviceId>() {
        Ok(id) => cpal::host_from_id(id.host()).map_err(|e| Error::Output(e.to_string()))?,
        Err(_) => cpal::default_host(),
    };
    let devices = host
        .output_devices()
        .map_err(|e| Error::Output(e.to_string()))?;
    for device in devices {
        if device_names(&device).iter().any(|n| n == name) {
            return Ok(device);
        }
    }
    Err(Error::Output(format!(
        "no output device named {name:?} (see `speaker-node devices`)"
    )))
}

/// The names a device answers to: its full cpal id, the id without the host, and its
/// description.
fn device_names(device: &cpal::Device) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(id) = device.id() {
        let id = id.to_string();
        if let Some((_, bare)) = id.split_once(':') {
            names.push(bare.to_string());
        }
        names.insert(0, id);
    }
    if let Ok(desc) = device.description() {
        names.push(desc.name().to_string());
    }
    names
}

/// Output devices of every host this machine offers, default host first.
pub(super) fn list() -> Result<Vec<DeviceInfo>, Error> {
    let _quiet = alsa::Output::local_error_handler().ok();
    let default = cpal::default_host()
        .default_output_device()
        .and_then(|d| d.id().ok());
    let mut hosts = cpal::available_hosts();
    hosts.sort_by_key(|h| Some(*h) != default.as_ref().map(|d| d.host()));
    let mut out = Vec::new();
    for host_id in hosts {
        let Ok(host) = cpal::host_from_id(host_id) else {
            continue;
        };
        let Ok(devices) = host.output_devices() else {
            continue;
        };
        for device in devices {
            let names = device_names(&device);
            let name = names.first().cloned().unwrap_or_default();
            out.push(DeviceInfo {
                description: names.last().cloned().unwrap_or_else(|| name.clone()),
                is_default: default.is_some() && device.id().ok() == default,
                name,
            });
        }
    }
    Ok(out)
}

impl DeviceSink {
    fn open(name: Option<&str>, preferred: AudioFormat) -> Result<Self, Error> {
        let device = find_device(name)?;
        let default = device
            .default_output_config()
            .map_err(|e| Error::Output(e.to_string()))?;
        let channels = default.channels();
        let supports_preferred = device
            .supported_output_configs()
            .map(|mut configs| {
                configs.any(|c| {
                    c.channels() == channels
                        && c.sample_format() == default.sample_format()
                        && (c.min_sample_rate()..=c.max_sample_rate())
                            .contains(&preferred.sample_rate)
                })
            })
            .unwrap_or(false);
        let sample_rate = if supports_preferred {
            preferred.sample_rate
        } else {
            default.sample_rate()
        };
        let format = AudioFormat {
            sample_rate,
            channels,
        };
        let period = (sample_rate as f32 * PERIOD_SECONDS) as u32;
        let capacity = ((sample_rate as f32 * RING_SECONDS) as usize) * usize::from(channels);
        let shared = Arc::new(Shared::default());
        let sample_format = default.sample_format();
        // Our period first; some devices refuse it, so then let them choose.
        let mut last_error = None;
        for buffer_size in [cpal::BufferSize::Fixed(period), cpal::BufferSize::Default] {
            let config = StreamConfig {
                channels,
                sample_rate,
                buffer_size,
            };
            let (producer, consumer) = RingBuffer::new(capacity);
            match build(&device, &config, sample_format, consumer, &shared) {
                Ok(stream) => {
                    let started = false;
                    return Ok(DeviceSink {
                        stream,
                        producer,
                        shared,
                        format,
                        capacity,
                        started,
                        written_frames: 0,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Output("no stream configuration worked".into())))
    }

    fn start(&mut self) -> Result<(), Error> {
        if !self.started {
            self.stream
                .play()
                .map_err(|e| Error::Output(e.to_string()))?;
            self.started = true;
            self.shared.active.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn check_failed(&self) -> Result<(), Error> {
        match self.shared.failed.get() {
            Some(msg) => Err(Error::Output(msg.clone())),
            None => Ok(()),
        }
    }

    /// Sleep for a fraction of the ring so a full ring is waited on without spinning.
    fn wait_step(&self) -> Duration {
        Duration::from_secs_f32(RING_SECONDS / 4.0)
    }
}

fn build(
    device: &cpal::Device,
    config: &StreamConfig,
    format: SampleFormat,
    consumer: Consumer<f32>,
    shared: &Arc<Shared>,
) -> Result<cpal::Stream, Error> {
    let channels = usize::from(config.channels);
    let shared_cb = Arc::clone(shared);
    let shared_err = Arc::clone(shared);
    let on_error = move |err: cpal::Error| {
        use cpal::ErrorKind::{DeviceNotAvailable, StreamInvalidated};
        if matches!(err.kind(), DeviceNotAvailable | StreamInvalidated) {
            let _ = shared_err.failed.set(err.to_string());
        } else {
            // cpal recovers from these itself and the stream goes on; a stream that
            // really stops is caught by the stall guard in `write` and `finish`.
            shared_err.glitches.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %err, "audio stream glitch");
        }
    };
    macro_rules! build_as {
        ($t:ty) => {
            device.build_output_stream::<$t, _, _>(
                config.clone(),
                callback::<$t>(consumer, channels, shared_cb),
                on_error,
                None,
            )
        };
    }
    let stream = match format {
        SampleFormat::F32 => build_as!(f32),
        SampleFormat::I16 => build_as!(i16),
        SampleFormat::I32 => build_as!(i32),
        SampleFormat::U16 => build_as!(u16),
        SampleFormat::U8 => build_as!(u8),
        SampleFormat::F64 => build_as!(f64),
        other => {
            return Err(Error::Output(format!(
                "device sample format {other} is not supported"
            )));
        }
    };
    stream.map_err(|e| Error::Output(e.to_string()))
}

/// The real-time callback: copy, convert, count. No locks, no allocation, no syscalls.
fn callback<T>(
    mut consumer: Consumer<f32>,
    channels: usize,
    shared: Arc<Shared>,
) -> impl FnMut(&mut [T], &OutputCallbackInfo) + Send + 'static
where
    T: SizedSample + FromSample<f32>,
{
    let mut read_total: u64 = 0;
    move |data: &mut [T], info: &OutputCallbackInfo| {
        let ts = info.timestamp();
        let latency = ts
            .playback
            .checked_duration_since(ts.callback)
            .unwrap_or_default();
        shared
            .latency_ns
            .store(latency.as_nanos() as u64, Ordering::Relaxed);
        let leaves = base().elapsed() + latency;
        shared.cb_read_frames.store(read_total, Ordering::Release);
        shared
            .cb_leaves_ns
            .store(leaves.as_nanos() as u64, Ordering::Release);
        let available = consumer.slots().min(data.len());
        let available = available - available % channels;
        let mut filled = 0;
        if let Ok(chunk) = consumer.read_chunk(available) {
            let (a, b) = chunk.as_slices();
            for (out, s) in data.iter_mut().zip(a.iter().chain(b)) {
                *out = T::from_sample(*s);
            }
            filled = available;
            chunk.commit_all();
        }
        read_total += (filled / channels) as u64;
        let frames = (data.len() / channels) as u64;
        shared
            .max_callback_frames
            .fetch_max(frames, Ordering::Relaxed);
        if filled < data.len() {
            data[filled..].fill(T::EQUILIBRIUM);
            let silent = ((data.len() - filled) / channels) as u64;
            shared.silence_frames.fetch_add(silent, Ordering::Relaxed);
            if shared.active.load(Ordering::Acquire) {
                shared.underruns.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Sink for DeviceSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, samples: &[f32]) -> Result<(), Error> {
        let channels = usize::from(self.format.channels);
        let mut rest = samples;
        let mut stalled_since: Option<Instant> = None;
        while !rest.is_empty() {
            self.check_failed()?;
            let free = self.producer.slots().min(rest.len());
            let n = free - free % channels;
            if n == 0 {
                // Full: the ring holds RING_SECONDS of audio, so the device can start now.
                self.start()?;
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > STALL_TIMEOUT {
                    return Err(Error::Output("the device stopped taking samples".into()));
                }
                std::thread::sleep(self.wait_step());
                continue;
            }
            stalled_since = None;
            if let Ok(chunk) = self.producer.write_chunk_uninit(n) {
                chunk.fill_from_iter(rest[..n].iter().copied());
                self.written_frames += (n / channels) as u64;
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.start()?;
        // What is still in the ring is the natural end, not an underrun.
        self.shared.active.store(false, Ordering::Release);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.producer.slots() < self.capacity {
            self.check_failed()?;
            if Instant::now() > deadline {
                return Err(Error::Output("the device stopped taking samples".into()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The last samples are still in the device's buffers (and, for a sound server, its
        // own). Stopping now would cut them off, and reported latencies are estimates, so
        // push silence behind them until all of that has certainly played out.
        let rate = u64::from(self.format.sample_rate);
        let latency = self
            .shared
            .latency_ns
            .load(Ordering::Relaxed)
            .min(1_000_000_000);
        let needed = 2 * self.shared.max_callback_frames.load(Ordering::Relaxed)
            + latency * rate / 1_000_000_000
            + rate / 20;
        let start = self.shared.silence_frames.load(Ordering::Relaxed);
        while self.shared.silence_frames.load(Ordering::Relaxed) - start < needed {
            self.check_failed()?;
            if Instant::now() > deadline {
                return Err(Error::Output("the device stopped taking samples".into()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stream
            .pause()
            .map_err(|e| Error::Output(e.to_string()))?;
        self.check_failed()
    }

    fn next_frame_leaves_in_ns(&self) -> Option<i64> {
        if !self.started {
            return None;
        }
        let (read, leaves) = loop {
            let leaves = self.shared.cb_leaves_ns.load(Ordering::Acquire);
            let read = self.shared.cb_read_frames.load(Ordering::Acquire);
            if self.shared.cb_leaves_ns.load(Ordering::Acquire) == leaves {
                break (read, leaves);
            }
        };
        if leaves == 0 {
            return None;
        }
        let written = self.written_frames;
        let queued = written.saturating_sub(read) as f64 / f64::from(self.format.sample_rate);
        let now = base().elapsed().as_nanos() as i64;
        Some(leaves as i64 + (queued * 1e9) as i64 - now)
    }

    fn stats(&self) -> SinkStats {
        SinkStats {
            underruns: self.shared.underruns.load(Ordering::Relaxed),
            glitches: self.shared.glitches.load(Ordering::Relaxed),
        }
    }
}
