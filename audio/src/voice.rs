//! Live voice as Opus (RFC 6716) through Debian's libopus: what the controller sends the
//! nodes while staff speak. Mono, 48 kHz, 20 ms frames: voice needs no more, a frame is
//! the unit of loss, and 20 ms is Opus's sweet spot between latency and overhead.
//! [`VoiceDecoder::conceal`] fills a lost frame with Opus's own packet loss concealment.

use crate::Error;

/// The voice sample rate (Opus's native one).
pub const RATE: u32 = 48_000;
/// Samples in one frame: 20 ms at 48 kHz.
pub const FRAME: usize = 960;
/// Frame length, ns.
pub const FRAME_NS: i64 = 20_000_000;
/// Default bit rate: clear speech with room under the 48 kbps a node may use on the wire.
pub const BITRATE: i32 = 24_000;
/// The largest packet accepted or produced (Opus allows 1275 bytes a frame).
pub const MAX_PACKET: usize = 1_275;

fn opus_error(what: &str, e: opus::Error) -> Error {
    Error::Corrupt(format!("opus {what}: {e}"))
}

/// Encodes 20 ms mono frames at 48 kHz.
pub struct VoiceEncoder {
    inner: opus::Encoder,
    out: Vec<u8>,
}

impl VoiceEncoder {
    /// An encoder tuned for speech at `bitrate` bits per second (variable rate).
    pub fn new(bitrate: i32) -> Result<Self, Error> {
        let mut inner = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip)
            .map_err(|e| opus_error("encoder", e))?;
        inner
            .set_bitrate(opus::Bitrate::Bits(bitrate))
            .map_err(|e| opus_error("bitrate", e))?;
        Ok(VoiceEncoder {
            inner,
            out: vec![0; MAX_PACKET],
        })
    }

    /// One frame of exactly [`FRAME`] samples in, one packet out.
    pub fn encode(&mut self, frame: &[f32]) -> Result<&[u8], Error> {
        if frame.len() != FRAME {
            return Err(Error::Corrupt(format!(
                "a voice frame is {FRAME} samples, not {}",
                frame.len()
            )));
        }
        let n = self
            .inner
            .encode_float(frame, &mut self.out)
            .map_err(|e| opus_error("encode", e))?;
        Ok(&self.out[..n])
    }
}

/// Decodes packets of a [`VoiceEncoder`] back to 20 ms mono frames at 48 kHz.
pub struct VoiceDecoder {
    inner: opus::Decoder,
    pcm: Vec<f32>,
}

impl VoiceDecoder {
    pub fn new() -> Result<Self, Error> {
        Ok(VoiceDecoder {
            inner: opus::Decoder::new(RATE, opus::Channels::Mono)
                .map_err(|e| opus_error("decoder", e))?,
            pcm: vec![0.0; FRAME],
        })
    }

    /// One packet's 20 ms. A damaged packet is an error (the caller conceals instead);
    /// a packet longer than 20 ms is cut to its first 20 ms.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[f32], Error> {
        if packet.is_empty() || packet.len() > MAX_PACKET {
            return Err(Error::Corrupt(format!(
                "a voice packet of {} bytes",
                packet.len()
            )));
        }
        let mut full = vec![0.0; FRAME * 6];
        let n = self
            .inner
            .decode_float(packet, &mut full, false)
            .map_err(|e| opus_error("decode", e))?;
        self.pcm.clear();
        self.pcm.extend_from_slice(&full[..n.min(FRAME)]);
        self.pcm.resize(FRAME, 0.0);
        Ok(&self.pcm)
    }

    /// 20 ms standing in for a lost frame: Opus's concealment, continuing the voice.
    pub fn conceal(&mut self) -> &[f32] {
        self.pcm.resize(FRAME, 0.0);
        if self.inner.decode_float(&[], &mut self.pcm, false).is_err() {
            self.pcm.fill(0.0);
        }
        &self.pcm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize) -> Vec<f32> {
        (0..frames * FRAME)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / RATE as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn voice_survives_the_round_trip_at_the_bit_rate() {
        let mut enc = VoiceEncoder::new(BITRATE).unwrap();
        let mut dec = VoiceDecoder::new().unwrap();
        let input = tone(100);
        let mut bytes = 0;
        let mut out = Vec::new();
        for frame in input.chunks(FRAME) {
            let packet = enc.encode(frame).unwrap().to_vec();
            bytes += packet.len();
            out.extend_from_slice(dec.decode(&packet).unwrap());
        }
        // 2 s of voice: about the bit rate (VBR), far under 48 kbps.
        let kbps = bytes as f64 * 8.0 / 2.0 / 1000.0;
        assert!((8.0..32.0).contains(&kbps), "{kbps} kbps");
        // The decoded tone carries the input's energy (after the codec's short delay).
        let energy = |s: &[f32]| s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32;
        let ratio = energy(&out[FRAME * 10..]) / energy(&input[FRAME * 10..]);
        assert!((0.7..1.3).contains(&ratio), "energy ratio {ratio}");
    }

    #[test]
    fn a_lost_frame_is_concealed_and_bad_packets_are_errors() {
        let mut enc = VoiceEncoder::new(BITRATE).unwrap();
        let mut dec = VoiceDecoder::new().unwrap();
        for frame in tone(5).chunks(FRAME) {
            let p = enc.encode(frame).unwrap().to_vec();
            dec.decode(&p).unwrap();
        }
        let hidden = dec.conceal().to_vec();
        assert_eq!(hidden.len(), FRAME);
        assert!(
            hidden.iter().any(|s| s.abs() > 0.01),
            "concealment continues the voice"
        );
        assert!(dec.decode(&[]).is_err());
        assert!(dec.decode(&[0xff; 2000]).is_err());
        assert!(enc.encode(&[0.0; 100]).is_err());
        // Garbage that parses as some packet or not: never a panic.
        for n in 1..64u8 {
            let _ = dec.decode(&vec![n; usize::from(n)]);
        }
    }
}
