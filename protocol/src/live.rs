//! Live audio on the node link: binary messages, controller to node, each carrying a few
//! consecutive 20 ms Opus frames of one live session, stamped with the controller-clock
//! instant its first frame is to leave every node's output.
//!
//! ```text
//! u8  version (1)
//! u32 session id              (little endian, as everything below)
//! u32 sequence number of the first frame (frames of a session count up from 0)
//! i64 play_at_ns of the first frame (the next frames follow every 20 ms)
//! u8  frame count (1..=MAX_FRAMES)
//! per frame: u16 length, then that many bytes of Opus
//! ```
//!
//! A binary layout rather than JSON: base64 and field names would cost more than the
//! voice itself (a 24 kbps frame is ~60 bytes); with two frames a message the wire stays
//! under 48 kbps, TCP/IP headers included.

/// The layout's version.
pub const VERSION: u8 = 1;
/// Frames one message may carry.
pub const MAX_FRAMES: usize = 16;
/// The largest Opus packet (RFC 6716 §3.4).
pub const MAX_PACKET: usize = 1275;
const HEADER: usize = 1 + 4 + 4 + 8 + 1;

/// Consecutive frames of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePacket {
    pub session: u32,
    pub seq: u32,
    pub play_at_ns: i64,
    pub frames: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed live audio message: {0}")]
pub struct LiveError(&'static str);

impl LivePacket {
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER + self.frames.iter().map(|f| 2 + f.len()).sum::<usize>());
        out.push(VERSION);
        out.extend_from_slice(&self.session.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.play_at_ns.to_le_bytes());
        out.push(self.frames.len().min(MAX_FRAMES) as u8);
        for f in self.frames.iter().take(MAX_FRAMES) {
            let len = f.len().min(MAX_PACKET);
            out.extend_from_slice(&(len as u16).to_le_bytes());
            out.extend_from_slice(&f[..len]);
        }
        out
    }

    /// Parses an untrusted message: any malformed input is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, LiveError> {
        if bytes.len() < HEADER {
            return Err(LiveError("too short"));
        }
        if bytes[0] != VERSION {
            return Err(LiveError("unknown version"));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut i64_bytes = [0u8; 8];
        i64_bytes.copy_from_slice(&bytes[9..17]);
        let count = usize::from(bytes[17]);
        if count == 0 || count > MAX_FRAMES {
            return Err(LiveError("frame count out of range"));
        }
        let mut frames = Vec::with_capacity(count);
        let mut at = HEADER;
        for _ in 0..count {
            let len = bytes
                .get(at..at + 2)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
                .ok_or(LiveError("cut off"))?;
            if len == 0 || len > MAX_PACKET {
                return Err(LiveError("frame length out of range"));
            }
            let frame = bytes
                .get(at + 2..at + 2 + len)
                .ok_or(LiveError("cut off"))?;
            frames.push(frame.to_vec());
            at += 2 + len;
        }
        if at != bytes.len() {
            return Err(LiveError("trailing bytes"));
        }
        Ok(LivePacket {
            session: u32_at(1),
            seq: u32_at(5),
            play_at_ns: i64::from_le_bytes(i64_bytes),
            frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_refusals() {
        let p = LivePacket {
            session: 7,
            seq: 1234,
            play_at_ns: 1_764_600_000_123_456_789,
            frames: vec![vec![1, 2, 3], vec![9; 60]],
        };
        let bytes = p.encode();
        assert_eq!(bytes.len(), HEADER + 2 + 3 + 2 + 60);
        assert_eq!(LivePacket::decode(&bytes), Ok(p));
        assert!(LivePacket::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(LivePacket::decode(&extra).is_err());
        let mut v2 = bytes;
        v2[0] = 2;
        assert!(LivePacket::decode(&v2).is_err());
        assert!(LivePacket::decode(&[]).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = LivePacket::decode(&bytes);
        }
    }
}
