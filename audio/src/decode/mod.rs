//! Streaming decode of untrusted audio files with symphonia 0.6.
//!
//! The container is found by probing the bytes, never by the file name. Memory stays
//! bounded whatever the file length: one packet is decoded at a time into a reused buffer.
//! Corrupt packets are skipped and counted; a file that ends early yields what it holds.
//! Encoder delay and padding are trimmed where the container states them (MP3 LAME/Xing
//! headers, Ogg granule positions) — symphonia does that per packet — and from the MP4
//! edit list, which we read ourselves (see `mp4_gapless`).

mod codec_names;
mod mp4_gapless;
mod opus;

use std::fs::File;
use std::io::Cursor;
use std::path::Path;

use serde::Serialize;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{
    MediaSource, MediaSourceStream, MediaSourceStreamOptions, ReadOnlySource,
};
use symphonia::core::meta::MetadataOptions;

use crate::Error;

/// symphonia's decoders, and Opus through libopus ([`opus`]).
fn codecs() -> &'static symphonia::core::codecs::registry::CodecRegistry {
    static CODECS: std::sync::LazyLock<symphonia::core::codecs::registry::CodecRegistry> =
        std::sync::LazyLock::new(|| {
            let mut registry = symphonia::core::codecs::registry::CodecRegistry::new();
            symphonia::default::register_enabled_codecs(&mut registry);
            registry.register_audio_decoder::<opus::OpusDecoder>();
            registry
        });
    &CODECS
}

/// After this many demuxer errors in a row the stream is treated as ended: the reader
/// cannot find its way back into the data.
const MAX_CONSECUTIVE_DEMUX_ERRORS: u32 = 64;
/// The media source read-ahead. Symphonia's minimum; keeps a node's memory small.
const SOURCE_BUFFER_LEN: usize = 64 * 1024;

/// What a file holds, as `speaker-node probe` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    /// Container, as symphonia names it: `mp3`, `mp2`, `isomp4`, `ogg`, `flac`, `wave`, `aiff`.
    pub format: String,
    /// Codec short name: `mp3`, `aac`, `vorbis`, `flac`, `pcm_s16le`, `adpcm_ima_wav`, ...
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// From the container's frame count; `None` when the container does not say.
    pub duration_ms: Option<u64>,
}

/// How a decode went, for warnings and for upload checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeReport {
    /// Frames (samples per channel) decoded.
    pub frames: u64,
    /// Damaged stretches passed over: packets that failed to decode, and jumps where the
    /// demuxer resynchronised past damage.
    pub skipped_packets: u64,
    /// Audio lost to those, in milliseconds.
    pub lost_ms: u64,
    /// The data ended before the container said it would, or mid-packet.
    pub truncated: bool,
    /// How much shorter than the container's stated length the decode came out, ms.
    pub missing_ms: u64,
    /// The same in codec frames (packets), estimated from the last packet's length.
    pub missing_packets: u64,
}

/// A streaming decoder for one file or in-memory blob.
pub struct Decoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    info: StreamInfo,
    samples: Vec<f32>,
    report: DecodeReport,
    ended: bool,
    /// `samples` holds a chunk decoded while opening that the caller has not had yet.
    pending_primed: bool,
    /// Frames the container says the track has.
    expected_frames: Option<u64>,
    /// Where the next packet should start (track time base); a later start is a gap.
    next_pts: Option<i64>,
    /// Frames lost in gaps and in packets that failed to decode.
    lost_frames: u64,
    last_packet_frames: u64,
    /// Gapless trim still to do (MP4 edit list): frames to drop, then frames to keep.
    trim_skip: u64,
    trim_keep: Option<u64>,
}

impl Decoder {
    /// Opens a file and prepares to decode its default audio track.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(Error::Io)?;
        let meta = file.metadata().map_err(Error::Io)?;
        if meta.is_dir() {
            return Err(Error::Io(std::io::Error::other("is a directory")));
        }
        if meta.len() == 0 {
            return Err(Error::Empty);
        }
        let mut decoder = match Self::from_source(Box::new(file)) {
            // symphonia's MP4 reader refuses an mdat that runs past the end of a seekable
            // file (a cut-off upload). Read as a stream it plays what is there.
            Err(Error::NoAudio) if starts_with_ftyp(path) => {
                let file = File::open(path).map_err(Error::Io)?;
                let stream = ReadOnlySource::new(file);
                Self::from_source(Box::new(stream)).map(|mut d| {
                    d.report.truncated = true;
                    d
                })
            }
            other => other,
        }?;
        if decoder.info.format == "isomp4" {
            let mut file = std::io::BufReader::new(File::open(path).map_err(Error::Io)?);
            decoder.apply_edit(mp4_gapless::read_edit(&mut file));
        }
        Ok(decoder)
    }

    /// Decodes from bytes in memory (fuzzing, tests, small uploads).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Error> {
        if bytes.is_empty() {
            return Err(Error::Empty);
        }
        let edit = mp4_gapless::read_edit(&mut Cursor::new(&bytes));
        let mut decoder = Self::from_source(Box::new(Cursor::new(bytes)))?;
        decoder.apply_edit(edit);
        Ok(decoder)
    }

    /// Decodes a stream as it arrives (a live source): reads block until data comes, and
    /// end of input ends the decode. Not seekable: lengths are what arrives.
    pub fn from_stream(reader: impl std::io::Read + Send + Sync + 'static) -> Result<Self, Error> {
        Self::from_source(Box::new(ReadOnlySource::new(reader)))
    }

    fn from_source(source: Box<dyn MediaSource>) -> Result<Self, Error> {
        guarded(|| Self::from_source_unguarded(source))?
    }

    fn from_source_unguarded(source: Box<dyn MediaSource>) -> Result<Self, Error> {
        let options = MediaSourceStreamOptions {
            buffer_len: SOURCE_BUFFER_LEN,
        };
        let stream = MediaSourceStream::new(source, options);
        let format = symphonia::default::get_probe()
            .probe(
                &Hint::new(),
                stream,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(probe_error)?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or(Error::NoAudioTrack)?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or(Error::NoAudioTrack)?
            .clone();
        let track_id = track.id;
        let num_frames = track.num_frames;
        // Opus's pre-skip (RFC 7845 §4.2): the track's delay, which no packet marks.
        let opus_delay = (params.codec
            == symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS)
            .then_some(track.delay)
            .flatten()
            .unwrap_or(0);
        let registered = codecs().get_audio_decoder(params.codec);
        if registered.is_none() {
            return Err(Error::UnsupportedCodec(codec_names::name(params.codec)));
        }
        let decoder = codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(what) => Error::UnsupportedCodec(what.to_string()),
                other => Error::Corrupt(other.to_string()),
            })?;
        let sample_rate = params.sample_rate.filter(|r| *r > 0);
        let channels = params
            .channels
            .as_ref()
            .map(|c| c.count())
            .filter(|c| *c > 0);
        let codec = decoder.codec_info().short_name.to_string();
        let mut this = Decoder {
            info: StreamInfo {
                format: format.format_info().short_name.to_string(),
                codec,
                sample_rate: sample_rate.unwrap_or(0),
                channels: channels.and_then(|c| u16::try_from(c).ok()).unwrap_or(0),
                duration_ms: None,
            },
            format,
            decoder,
            track_id,
            samples: Vec::new(),
            report: DecodeReport::default(),
            ended: false,
            pending_primed: false,
            expected_frames: None,
            next_pts: None,
            lost_frames: 0,
            last_packet_frames: 0,
            trim_skip: u64::from(opus_delay),
            trim_keep: None,
        };
        // Decode the first packet now: a file that cannot play fails before any sound, and
        // some containers (raw AAC, some MP4s) only reveal the layout in the first packet.
        this.prime()?;
        if this.info.sample_rate == 0 || this.info.channels == 0 || !this.pending_primed {
            return Err(Error::NoAudio);
        }
        this.expected_frames = num_frames;
        this.info.duration_ms = num_frames.map(|n| n * 1000 / u64::from(this.info.sample_rate));
        Ok(this)
    }

    /// Decodes up to the first good packet to learn the stream layout; keeps its samples.
    fn prime(&mut self) -> Result<(), Error> {
        if let Some((rate, channels)) = self.decode_next()? {
            self.info.sample_rate = rate;
            self.info.channels = channels;
            self.pending_primed = true;
        }
        Ok(())
    }

    /// Applies an MP4 edit list (only to MP4 files: other containers trim themselves).
    fn apply_edit(&mut self, edit: Option<mp4_gapless::Edit>) {
        let Some(edit) = edit.filter(|_| self.info.format == "isomp4") else {
            return;
        };
        let trim = edit.to_trim(self.info.sample_rate);
        self.trim_skip = trim.start;
        self.trim_keep = trim.length;
        if let Some(length) = trim.length {
            self.info.duration_ms = Some(length * 1000 / u64::from(self.info.sample_rate));
        }
    }

    /// Cuts the gapless trim out of the chunk in `samples`; false if nothing is left.
    fn trim_chunk(&mut self) -> bool {
        let channels = usize::from(self.info.channels);
        let frames = (self.samples.len() / channels) as u64;
        let skip = self.trim_skip.min(frames);
        if skip > 0 {
            self.samples.drain(..skip as usize * channels);
            self.trim_skip -= skip;
        }
        if let Some(keep) = self.trim_keep.as_mut() {
            let frames = (self.samples.len() / channels) as u64;
            let kept = (*keep).min(frames);
            self.samples.truncate(kept as usize * channels);
            *keep -= kept;
        }
        !self.samples.is_empty()
    }

    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    pub fn report(&self) -> DecodeReport {
        self.report
    }

    /// At the end: a file that stops well short of the length its container states, with
    /// no corrupt frames to account for it, was cut off.
    fn check_length(&mut self) {
        let rate = u64::from(self.info.sample_rate.max(1));
        self.report.lost_ms = self.lost_frames * 1000 / rate;
        let Some(expected) = self.expected_frames else {
            return;
        };
        let accounted = self.report.frames + self.lost_frames;
        let slack = (expected / 100).max(2 * self.last_packet_frames);
        if accounted + slack < expected {
            self.report.truncated = true;
        }
        let missing = expected.saturating_sub(self.report.frames);
        self.report.missing_ms = missing * 1000 / rate;
        self.report.missing_packets = missing.div_ceil(self.last_packet_frames.max(1));
    }

    /// Counts packets missing between the last good one and this one (a demuxer that
    /// resynchronised past damage without saying so).
    fn note_packet_position(&mut self, pts: i64, span: u64) {
        // A demuxer that gives no durations (Matroska blocks) cannot show a gap.
        if span == 0 {
            self.next_pts = None;
            return;
        }
        if let Some(expected) = self.next_pts {
            if pts > expected {
                self.lost_frames += (pts - expected) as u64;
                self.report.skipped_packets += 1;
            }
        }
        self.next_pts = Some(pts.saturating_add(span as i64));
    }

    /// The next block of interleaved samples at the stream's own rate and channel count,
    /// or `None` at the end. Corrupt packets are skipped (see [`DecodeReport`]).
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, Error> {
        loop {
            if self.trim_keep == Some(0) {
                return Ok(None); // the rest is encoder padding
            }
            if !std::mem::take(&mut self.pending_primed) {
                let next = match guarded(|| self.decode_next()) {
                    Ok(next) => next?,
                    Err(fault) => {
                        self.ended = true;
                        return Err(fault);
                    }
                };
                let Some((rate, channels)) = next else {
                    return Ok(None);
                };
                if rate != self.info.sample_rate || channels != self.info.channels {
                    return Err(Error::FormatChanged(format!(
                        "{} Hz {} ch became {rate} Hz {channels} ch",
                        self.info.sample_rate, self.info.channels
                    )));
                }
            }
            if self.trim_chunk() {
                return Ok(Some(&self.samples));
            }
        }
    }

    /// Decodes packets until one yields audio. Returns (rate, channels) of what is now in
    /// `self.samples`, or `None` at the end of the stream.
    fn decode_next(&mut self) -> Result<Option<(u32, u16)>, Error> {
        let mut demux_errors = 0;
        while !self.ended {
            let next = self.format.next_packet();
            if let Err(e) = &next {
                tracing::debug!(error = %e, "demuxer error");
            }
            let packet = match next {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.report.truncated = true;
                    break;
                }
                Err(SymError::IoError(e)) => return Err(Error::Io(e)),
                Err(SymError::ResetRequired) => break, // chained stream: we play the first
                Err(SymError::DecodeError(_)) | Err(SymError::LimitError(_))
                    if demux_errors < MAX_CONSECUTIVE_DEMUX_ERRORS =>
                {
                    demux_errors += 1;
                    self.report.skipped_packets += 1;
                    continue;
                }
                Err(SymError::DecodeError(_)) | Err(SymError::LimitError(_)) => {
                    self.report.truncated = true;
                    break;
                }
                Err(other) => return Err(Error::Corrupt(other.to_string())),
            };
            demux_errors = 0;
            if packet.track_id != self.track_id {
                continue;
            }
            // `dur` excludes trimmed frames; the packet spans all of them.
            let span = packet.dur.get() + packet.trim_start.get() + packet.trim_end.get();
            self.note_packet_position(packet.pts.get(), span);
            let decoded_before = self.report.frames > 0;
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    let frames = buf.frames();
                    if frames == 0 {
                        continue;
                    }
                    self.last_packet_frames = frames as u64;
                    let rate = buf.spec().rate();
                    let channels = u16::try_from(buf.spec().channels().count()).unwrap_or(0);
                    buf.copy_to_vec_interleaved(&mut self.samples);
                    self.report.frames += frames as u64;
                    return Ok(Some((rate, channels)));
                }
                Err(SymError::DecodeError(_)) => self.skip_packet(),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.report.skipped_packets += 1;
                    self.report.truncated = true;
                }
                Err(SymError::IoError(e)) => return Err(Error::Io(e)),
                // Damage can look like a feature the decoder lacks; after good audio it is damage.
                Err(SymError::Unsupported(_)) if decoded_before => self.skip_packet(),
                Err(SymError::Unsupported(what)) => {
                    return Err(Error::UnsupportedCodec(what.to_string()));
                }
                Err(other) => return Err(Error::Corrupt(other.to_string())),
            }
        }
        if !self.ended {
            self.ended = true;
            self.check_length();
        }
        Ok(None)
    }

    fn skip_packet(&mut self) {
        self.report.skipped_packets += 1;
        self.lost_frames += self.last_packet_frames;
    }
}

/// An MP4 file starts with its `ftyp` box.
fn starts_with_ftyp(path: &Path) -> bool {
    let mut head = [0u8; 8];
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head[4..] == b"ftyp"
}

thread_local! {
    static IN_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while this thread runs decoder code under [`guarded`]: a panic hook uses it to keep
/// a contained decoder fault off the terminal.
pub fn inside_decoder() -> bool {
    IN_DECODER.with(|c| c.get())
}

/// Runs decoder code so that a panic inside a codec (a bug triggered by a crafted file)
/// becomes an error for that file instead of taking the process down.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
    IN_DECODER.with(|c| c.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_DECODER.with(|c| c.set(false));
    result.map_err(|_| Error::Corrupt("the decoder could not make sense of the data".into()))
}

fn probe_error(err: SymError) -> Error {
    match err {
        SymError::Unsupported(_) => Error::UnknownFormat,
        SymError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::UnknownFormat
        }
        SymError::IoError(e) => Error::Io(e),
        other => Error::Corrupt(other.to_string()),
    }
}

/// Probes a file: container, codec, layout and duration. When the container does not state
/// the length, the file is decoded through to count it.
pub fn probe(path: &Path) -> Result<StreamInfo, Error> {
    let mut decoder = Decoder::open(path)?;
    if decoder.info.duration_ms.is_none() {
        while decoder.next_chunk()?.is_some() {}
        let frames = decoder.report().frames;
        decoder.info.duration_ms = Some(frames * 1000 / u64::from(decoder.info.sample_rate));
    }
    Ok(decoder.info)
}

/// Decodes a whole file, discarding the audio, through the path the CMS's upload check
/// takes ([`Decoder::open`], with its MP4 fallback for a cut-off file and the edit-list
/// trim): what the fuzz target runs. Fails when nothing decodable is found.
pub fn check_file(path: &Path) -> Result<(StreamInfo, DecodeReport), Error> {
    drain(Decoder::open(path)?)
}

/// Decodes a whole blob in memory, discarding the audio. Fails when nothing decodable is
/// found.
pub fn check_bytes(bytes: Vec<u8>) -> Result<(StreamInfo, DecodeReport), Error> {
    drain(Decoder::from_bytes(bytes)?)
}

fn drain(mut decoder: Decoder) -> Result<(StreamInfo, DecodeReport), Error> {
    while decoder.next_chunk()?.is_some() {}
    if decoder.report.frames == 0 {
        return Err(Error::NoAudio);
    }
    Ok((decoder.info.clone(), decoder.report))
}
