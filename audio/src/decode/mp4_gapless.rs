//! Gapless playback for MP4/M4A: the edit list (`moov/trak/edts/elst`) says how many
//! priming frames the encoder put before the audio and how long the audio really is.
//! symphonia's MP4 reader does not apply it, so AAC would start with ~1024 frames of
//! encoder delay and end with padding; this reads the few boxes needed and nothing else.
//!
//! Untrusted input: every size is bounds-checked, reading stops at the first thing that
//! does not add up, and the answer is then simply "no trim".

use std::io::{Read, Seek, SeekFrom};

/// What to cut from the decoded track, in frames at the track's sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Trim {
    pub start: u64,
    /// Frames to keep after the start trim; `None` keeps everything.
    pub length: Option<u64>,
}

/// The first edit of the first sound track, in the file's own time units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Edit {
    media_time: u64,
    media_scale: u64,
    duration: u64,
    movie_scale: u64,
}

impl Edit {
    pub fn to_trim(self, sample_rate: u32) -> Trim {
        let rate = u64::from(sample_rate);
        Trim {
            start: self.media_time.saturating_mul(rate) / self.media_scale,
            length: (self.duration > 0)
                .then(|| self.duration.saturating_mul(rate) / self.movie_scale),
        }
    }
}

/// More boxes than this at one level is not a real file.
const MAX_BOXES: u32 = 10_000;

struct BoxHeader {
    kind: [u8; 4],
    /// Where the body starts and ends, as absolute offsets.
    body: u64,
    end: u64,
}

fn read_u32(r: &mut impl Read) -> Option<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).ok()?;
    Some(u32::from_be_bytes(b))
}

fn read_u64(r: &mut impl Read) -> Option<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).ok()?;
    Some(u64::from_be_bytes(b))
}

fn read_header<R: Read + Seek>(r: &mut R, limit: u64) -> Option<BoxHeader> {
    let start = r.stream_position().ok()?;
    if start + 8 > limit {
        return None;
    }
    let size = u64::from(read_u32(r)?);
    let mut kind = [0u8; 4];
    r.read_exact(&mut kind).ok()?;
    let (body, end) = match size {
        0 => (start + 8, limit),
        1 => (start + 16, start.checked_add(read_u64(r)?)?),
        n => (start + 8, start.checked_add(n)?),
    };
    (end >= body && end <= limit).then_some(BoxHeader { kind, body, end })
}

/// Calls `visit` on each child box of `[from, to)`; stops when `visit` returns `Some`.
fn children<R: Read + Seek, T>(
    r: &mut R,
    from: u64,
    to: u64,
    mut visit: impl FnMut(&mut R, &BoxHeader) -> Option<T>,
) -> Option<T> {
    let mut pos = from;
    for _ in 0..MAX_BOXES {
        r.seek(SeekFrom::Start(pos)).ok()?;
        let header = read_header(r, to)?;
        if let Some(found) = visit(r, &header) {
            return Some(found);
        }
        pos = header.end;
        if pos >= to {
            break;
        }
    }
    None
}

fn find<R: Read + Seek>(r: &mut R, from: u64, to: u64, kind: &[u8; 4]) -> Option<(u64, u64)> {
    children(r, from, to, |_, h| {
        (&h.kind == kind).then_some((h.body, h.end))
    })
}

/// Timescale of an `mvhd` or `mdhd` body (same layout up to the timescale).
fn timescale<R: Read + Seek>(r: &mut R, body: u64) -> Option<u32> {
    r.seek(SeekFrom::Start(body)).ok()?;
    let version = read_u32(r)? >> 24;
    let skip = if version == 1 { 16 } else { 8 };
    r.seek(SeekFrom::Current(skip)).ok()?;
    read_u32(r).filter(|t| *t > 0)
}

/// The first edit that plays media: (segment duration in movie time, media time).
fn first_edit<R: Read + Seek>(r: &mut R, body: u64) -> Option<(u64, u64)> {
    r.seek(SeekFrom::Start(body)).ok()?;
    let version = read_u32(r)? >> 24;
    let count = read_u32(r)?.min(MAX_BOXES);
    for _ in 0..count {
        let (duration, media_time) = if version == 1 {
            (read_u64(r)?, read_u64(r)? as i64)
        } else {
            (u64::from(read_u32(r)?), i64::from(read_u32(r)? as i32))
        };
        let _rate = read_u32(r)?;
        if media_time >= 0 {
            return Some((duration, media_time as u64));
        }
    }
    None
}

fn is_sound_track<R: Read + Seek>(r: &mut R, mdia: (u64, u64)) -> bool {
    let Some((body, _)) = find(r, mdia.0, mdia.1, b"hdlr") else {
        return false;
    };
    let mut kind = [0u8; 4];
    r.seek(SeekFrom::Start(body + 8)).is_ok() && r.read_exact(&mut kind).is_ok() && &kind == b"soun"
}

/// Reads the edit list of the first sound track; `None` when there is none to apply.
pub(super) fn read_edit<R: Read + Seek>(r: &mut R) -> Option<Edit> {
    let len = r.seek(SeekFrom::End(0)).ok()?;
    let (moov, moov_end) = find(r, 0, len, b"moov")?;
    let movie_scale =
        u64::from(find(r, moov, moov_end, b"mvhd").and_then(|(b, _)| timescale(r, b))?);
    children(r, moov, moov_end, |r, trak| {
        if &trak.kind != b"trak" {
            return None;
        }
        let mdia = find(r, trak.body, trak.end, b"mdia")?;
        if !is_sound_track(r, mdia) {
            return None;
        }
        let media_scale =
            u64::from(find(r, mdia.0, mdia.1, b"mdhd").and_then(|(b, _)| timescale(r, b))?);
        let (edts, edts_end) = find(r, trak.body, trak.end, b"edts")?;
        let (elst, _) = find(r, edts, edts_end, b"elst")?;
        let (duration, media_time) = first_edit(r, elst)?;
        Some(Edit {
            media_time,
            media_scale,
            duration,
            movie_scale,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn scale_box(kind: &[u8; 4], scale: u32) -> Vec<u8> {
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&scale.to_be_bytes());
        body.extend_from_slice(&[0u8; 4]);
        boxed(kind, &body)
    }

    fn movie(edit: &[u8], handler: &[u8; 4]) -> Vec<u8> {
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        let mdia = [scale_box(b"mdhd", 44_100), boxed(b"hdlr", &hdlr)].concat();
        let trak = [boxed(b"edts", &boxed(b"elst", edit)), boxed(b"mdia", &mdia)].concat();
        let moov = [scale_box(b"mvhd", 1000), boxed(b"trak", &trak)].concat();
        [boxed(b"ftyp", b"M4A \0\0\0\0"), boxed(b"moov", &moov)].concat()
    }

    fn elst_v0(entries: &[(u32, i32)]) -> Vec<u8> {
        let mut v = vec![0u8; 4];
        v.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (d, t) in entries {
            v.extend_from_slice(&d.to_be_bytes());
            v.extend_from_slice(&t.to_be_bytes());
            v.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        v
    }

    #[test]
    fn reads_priming_and_length() {
        let file = movie(&elst_v0(&[(1500, 1024)]), b"soun");
        let trim = read_edit(&mut Cursor::new(file)).map(|e| e.to_trim(44_100));
        assert_eq!(
            trim,
            Some(Trim {
                start: 1024,
                length: Some(66_150)
            })
        );
        let at_48k = read_edit(&mut Cursor::new(movie(
            &elst_v0(&[(1500, 44_100)]),
            b"soun",
        )))
        .map(|e| e.to_trim(48_000));
        assert_eq!(at_48k.map(|t| t.start), Some(48_000));
    }

    #[test]
    fn skips_empty_edits_and_video_tracks() {
        let file = movie(&elst_v0(&[(500, -1), (1000, 2112)]), b"soun");
        let trim = read_edit(&mut Cursor::new(file)).map(|e| e.to_trim(44_100));
        assert_eq!(trim.map(|t| t.start), Some(2112));
        let video = movie(&elst_v0(&[(1000, 1024)]), b"vide");
        assert_eq!(read_edit(&mut Cursor::new(video)), None);
    }

    #[test]
    fn garbage_gives_no_trim() {
        let file = movie(&elst_v0(&[(1500, 1024)]), b"soun");
        for cut in 0..file.len() {
            let _ = read_edit(&mut Cursor::new(&file[..cut]));
        }
        let mut bad = file.clone();
        bad[3] = 0xff; // ftyp claims to run past the end
        assert_eq!(read_edit(&mut Cursor::new(bad)), None);
    }
}
