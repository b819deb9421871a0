//! Keeps a play on the controller's clock by smooth resampling (docs/ARCHITECTURE.md, "Clock
//! sync"). The output's crystal and the controller's clock never run at quite the same
//! rate (a card 100 ppm fast plays 4.8 frames a second too many at 48 kHz), and the
//! node's disciplined clock slews. Dropping or repeating frames to follow them moved the
//! audio in steps and damaged it; here the job's audio goes through rubato's asynchronous
//! sinc resampler, whose ratio a control loop ([`Steer`]) sets within ±[`MAX_PPM`]
//! (1.7 cents of pitch at the limit, far under what ears notice) so that the frame the
//! output plays next is the job frame due at that instant. Only an error beyond
//! [`JUMP_NS`] (a clock stepped far) is jumped.

use audio::Error;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Indexing, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

/// The widest correction, parts per million of speed.
pub const MAX_PPM: f64 = 1_000.0;
/// Further off than this (ns), the play jumps to where it should be.
pub const JUMP_NS: i64 = 10_000_000;
/// The resampler's filter: 64 taps is ample at a ratio this close to 1 (no aliasing to
/// keep out), and light enough for a small board.
const SINC_LEN: usize = 64;
/// The ratio may move this far from 1 (the loop stays within [`MAX_PPM`]).
const MAX_RELATIVE: f64 = 1.01;

/// The control loop: from how late the job's next frame will leave (ns, positive: late),
/// the speed to play at. Proportional-integral: the proportional part closes an error in
/// about [`TAU_P_S`]; the integral learns the output's steady rate against the clock (a
/// crystal's ppm), so that no error is needed to hold it; critically damped
/// (`TAU_I_S` = 4 `TAU_P_S`). The error is first smoothed over [`SMOOTH_S`], as a real
/// card reports its timing with some jitter.
/// Between plays the rate is measured instead, from how many frames the output takes
/// against the clock over [`IDLE_SPAN_S`], so the first play after a start already runs at
/// it.
#[derive(Debug, Default)]
pub struct Steer {
    smoothed_ns: f64,
    integral_ppm: f64,
    last_ns: Option<i64>,
    /// Idle observations: (controller time, output frames) once a second, oldest first.
    idle: std::collections::VecDeque<(i64, u64)>,
    /// Whether the rate was measured yet.
    learned: bool,
}

const TAU_P_S: f64 = 1.0;
const TAU_I_S: f64 = 4.0;
const IDLE_SPAN_S: usize = 10;
const SMOOTH_S: f64 = 0.2;
/// The integral holds at most this (a crystal further off is broken).
const MAX_INTEGRAL_PPM: f64 = 500.0;

impl Steer {
    /// The speed (ppm) for an error of `error_ns` measured at `now_ns`.
    pub fn update(&mut self, error_ns: i64, now_ns: i64) -> f64 {
        let dt = self
            .last_ns
            .map_or(0.0, |last| ((now_ns - last) as f64 / 1e9).clamp(0.0, 0.1));
        self.last_ns = Some(now_ns);
        self.smoothed_ns += (error_ns as f64 - self.smoothed_ns) * dt / (SMOOTH_S + dt);
        let error_s = self.smoothed_ns / 1e9;
        self.integral_ppm = (self.integral_ppm + error_s * dt / (TAU_P_S * TAU_I_S) * 1e6)
            .clamp(-MAX_INTEGRAL_PPM, MAX_INTEGRAL_PPM);
        self.learned = true;
        (error_s / TAU_P_S * 1e6 + self.integral_ppm).clamp(-MAX_PPM, MAX_PPM)
    }

    /// A new play (or a jump): the error starts afresh; the learned rate stays.
    pub fn restart(&mut self) {
        self.smoothed_ns = 0.0;
        self.last_ns = None;
        self.idle.clear();
    }

    /// No play on air: output frame `frames` (counted since the output opened) leaves at
    /// `t_next`; learns the output's rate against the clock.
    pub fn idle(&mut self, t_next: i64, frames: u64, rate: u32) {
        if self
            .idle
            .back()
            .is_some_and(|&(t, _)| t_next - t < 1_000_000_000)
        {
            return;
        }
        self.idle.push_back((t_next, frames));
        if self.idle.len() > IDLE_SPAN_S + 1 {
            self.idle.pop_front();
        }
        let (Some(&(t0, f0)), true) = (self.idle.front(), self.idle.len() > IDLE_SPAN_S) else {
            return;
        };
        let elapsed = (t_next - t0) as f64;
        let played = (frames - f0) as f64 * 1e9 / f64::from(rate);
        // More frames played than time passed: the output is fast, and a play must go
        // slower to keep to the clock.
        let ppm = (elapsed - played) / elapsed * 1e6;
        if ppm.abs() < MAX_INTEGRAL_PPM {
            let weight = if self.learned { 0.3 } else { 1.0 };
            self.integral_ppm += (ppm - self.integral_ppm) * weight;
            self.learned = true;
        }
    }
}

/// A job's audio on its way to the output, resampled to keep its timing.
pub struct Pacer {
    resampler: Async<f32>,
    channels: usize,
    /// Output frames per resampler call.
    chunk: usize,
    input: Vec<f32>,
    /// One call's output; `taken` samples of it are used.
    output: Vec<f32>,
    taken: usize,
    /// Job frames per output frame of the call in `output`.
    step: f64,
    /// Frames of silence to play before the next output frame (a jump back).
    silence: usize,
    /// Output frames still to drop: the filter's delay, so that output starts with the
    /// job's first frame.
    discard: usize,
    /// The job frame (fractional) the next output frame plays.
    position: f64,
    /// Job frames handed to the resampler.
    fed: u64,
    /// Job frames in all, once the job said it had no more.
    end: Option<u64>,
}

impl Pacer {
    /// A pacer for a job whose first `start` frames are already played (or skipped).
    pub fn new(sample_rate: u32, channels: usize, start: u64) -> Result<Self, Error> {
        let params = SincInterpolationParameters::new(SINC_LEN, WindowFunction::BlackmanHarris2)
            .interpolation(SincInterpolationType::Cubic);
        let chunk = (sample_rate as usize / 100).max(64);
        let resampler = Async::<f32>::new_sinc(
            1.0,
            MAX_RELATIVE,
            &params,
            chunk,
            channels,
            FixedAsync::Output,
        )
        .map_err(|e| Error::Resample(e.to_string()))?;
        Ok(Pacer {
            // rubato reports the delay rounded up by a frame (checked by the tests below).
            discard: rubato::Resampler::output_delay(&resampler).saturating_sub(1),
            channels,
            chunk,
            input: Vec::new(),
            output: Vec::new(),
            taken: 0,
            step: 1.0,
            silence: 0,
            position: start as f64,
            fed: start,
            end: None,
            resampler,
        })
    }

    /// The job frame the next output frame plays.
    pub fn position(&self) -> f64 {
        self.position
    }

    /// Plays faster by `ppm` parts per million (slower if negative) from the next call on.
    pub fn set_speed_ppm(&mut self, ppm: f64) {
        let ppm = ppm.clamp(-MAX_PPM, MAX_PPM);
        // rubato's ratio is output over input: faster is fewer output frames per input.
        let _ = rubato::Adjustable::set_resample_ratio_relative(
            &mut self.resampler,
            1.0 / (1.0 + ppm / 1e6),
            false,
        );
    }

    /// Plays `frames` frames of silence before going on (the play was early).
    pub fn hold(&mut self, frames: usize) {
        self.silence += frames;
    }

    /// Appends `frames` output frames to `out`, pulling job audio through `pull` (which
    /// appends up to the frames asked for and says whether the job has more). Returns how
    /// many of these frames carry the job's audio and whether it has more after them.
    pub fn render(
        &mut self,
        out: &mut Vec<f32>,
        frames: usize,
        pull: &mut dyn FnMut(&mut Vec<f32>, usize) -> bool,
    ) -> Result<(usize, bool), Error> {
        let mut job_frames = 0;
        let mut left = frames;
        while left > 0 {
            if self.silence > 0 {
                let n = self.silence.min(left);
                out.resize(out.len() + n * self.channels, 0.0);
                self.silence -= n;
                left -= n;
                job_frames += n;
                continue;
            }
            if self.taken == self.output.len() {
                self.process(pull)?;
                let drop = self.discard.min(self.output.len() / self.channels);
                self.taken = drop * self.channels;
                self.discard -= drop;
                continue;
            }
            let available = (self.output.len() - self.taken) / self.channels;
            let n = available.min(left);
            out.extend_from_slice(&self.output[self.taken..self.taken + n * self.channels]);
            self.taken += n * self.channels;
            left -= n;
            // Of these frames, those before the job's end carry it.
            job_frames += match self.end {
                None => n,
                Some(end) => ((end as f64 - self.position) / self.step)
                    .ceil()
                    .clamp(0.0, n as f64) as usize,
            };
            self.position += n as f64 * self.step;
        }
        let more = self.end.is_none_or(|end| self.position < end as f64);
        Ok((job_frames, more))
    }

    /// One resampler call: its input pulled from the job (silence after its end).
    fn process(&mut self, pull: &mut dyn FnMut(&mut Vec<f32>, usize) -> bool) -> Result<(), Error> {
        let err = |e: &dyn std::fmt::Display| Error::Resample(e.to_string());
        let need = rubato::Resampler::input_frames_next(&self.resampler);
        // The ratio holds for the whole call (it is changed between calls, unramped).
        self.step = 1.0 / rubato::Resampler::resample_ratio(&self.resampler);
        self.input.clear();
        if self.end.is_none() {
            let more = pull(&mut self.input, need);
            let got = (self.input.len() / self.channels) as u64;
            self.fed += got;
            if !more || got < need as u64 {
                self.end = Some(self.fed);
            }
        }
        self.input.resize(need * self.channels, 0.0);
        self.output.resize(self.chunk * self.channels, 0.0);
        let input = InterleavedSlice::new(&self.input, self.channels, need).map_err(|e| err(&e))?;
        let mut output = InterleavedSlice::new_mut(&mut self.output, self.channels, self.chunk)
            .map_err(|e| err(&e))?;
        let (_, produced) = self
            .resampler
            .process_into_buffer(&input, &mut output, None::<&Indexing>)
            .map_err(|e| err(&e))?;
        self.output.truncate(produced * self.channels);
        self.taken = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job of `len` frames of `signal`, mono, pulled as the playout pulls.
    fn job(signal: Vec<f32>) -> impl FnMut(&mut Vec<f32>, usize) -> bool {
        let mut at = 0;
        move |buf, want| {
            let n = want.min(signal.len() - at);
            buf.extend_from_slice(&signal[at..at + n]);
            at += n;
            at < signal.len()
        }
    }

    fn noise(len: usize) -> Vec<f32> {
        let mut x = 0x9E37_79B9u32;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32 - 0.5) * 0.5
            })
            .collect()
    }

    #[test]
    fn at_speed_one_the_output_is_the_job_from_its_first_frame() {
        let mut impulse = vec![0.0; 4_000];
        impulse[1_000] = 1.0;
        let mut p = Pacer::new(48_000, 1, 0).unwrap();
        let mut out = Vec::new();
        let mut pull = job(impulse);
        let (job_frames, more) = p.render(&mut out, 3_000, &mut pull).unwrap();
        assert_eq!((job_frames, more), (3_000, true));
        let peak = (0..out.len())
            .max_by(|&a, &b| out[a].total_cmp(&out[b]))
            .unwrap();
        assert_eq!(peak, 1_000, "the impulse comes out where it went in");
        // Centred: the filter (cut-off near 0.8 of Nyquist) spreads it evenly both ways.
        assert!(out[1_000] > 0.7, "{}", out[1_000]);
        assert!(
            (out[999] - out[1_001]).abs() < 0.05,
            "{:?}",
            &out[998..1003]
        );
        assert_eq!(p.position(), 3_000.0);
        // The end: the job's last frame is frame 3999.
        let (job_frames, more) = p.render(&mut out, 2_000, &mut pull).unwrap();
        assert_eq!((job_frames, more), (1_000, false));
    }

    #[test]
    fn a_speed_change_moves_the_position_smoothly_and_keeps_the_sound() {
        let signal = noise(96_000);
        let mut p = Pacer::new(48_000, 1, 0).unwrap();
        let mut out = Vec::new();
        let mut pull = job(signal.clone());
        p.set_speed_ppm(1_000.0);
        for _ in 0..100 {
            p.render(&mut out, 480, &mut pull).unwrap();
        }
        // A second at +1000 ppm: 48 frames ahead.
        assert!((p.position() - 48_048.0).abs() < 0.01, "{}", p.position());
        // What it played at output frame k is the job at frame k * 1.001, interpolated.
        let mut err = 0.0f64;
        let mut sig = 0.0f64;
        for (k, played) in out.iter().enumerate().take(40_000).skip(10_000) {
            let x = k as f64 * 1.001;
            let (i, f) = (x.floor() as usize, x.fract() as f32);
            let want = signal[i] * (1.0 - f) + signal[i + 1] * f;
            err += f64::from(played - want).powi(2);
            sig += f64::from(want).powi(2);
        }
        // White noise reaches up to 24 kHz, above the filter's cut-off, and linear
        // interpolation of it is itself off; the match is still close, and one frame
        // either way is far worse.
        assert!(err / sig < 0.2, "error ratio {}", err / sig);
    }

    /// An output whose crystal runs `card_ppm` fast against the controller's clock, played
    /// through the loop for `seconds`: the error at the end, ns.
    fn run_loop(card_ppm: f64, start_error_ns: i64, seconds: usize) -> (Vec<i64>, Steer) {
        let mut p = Pacer::new(48_000, 1, 0).unwrap();
        let mut steer = Steer::default();
        run_with(&mut p, &mut steer, card_ppm, start_error_ns, seconds)
    }

    fn run_with(
        p: &mut Pacer,
        steer: &mut Steer,
        card_ppm: f64,
        start_error_ns: i64,
        seconds: usize,
    ) -> (Vec<i64>, Steer) {
        let mut pull = job(vec![0.1; 48_000 * (seconds + 2)]);
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for block in 0..seconds * 100 {
            // When output frame `block * 480` leaves, on the controller's clock.
            let t_next = start_error_ns
                + (block as f64 * 480.0 / 48_000.0 * 1e9 / (1.0 + card_ppm / 1e6)) as i64;
            let due = (p.position() / 48_000.0 * 1e9) as i64;
            let error = t_next - due;
            errors.push(error);
            p.set_speed_ppm(steer.update(error, t_next));
            out.clear();
            p.render(&mut out, 480, &mut pull).unwrap();
        }
        (errors, std::mem::take(steer))
    }

    #[test]
    fn the_loop_follows_a_fast_card_and_learns_its_rate() {
        let (errors, steer) = run_loop(100.0, 0, 60);
        let worst = errors.iter().map(|e| e.abs()).max().unwrap();
        assert!(worst < 100_000, "worst {worst} ns");
        let last = errors.last().unwrap().abs();
        assert!(last < 2_000, "{last} ns at the end");
        // A fast card: plays go slower.
        assert!((steer.integral_ppm + 100.0).abs() < 2.0, "{steer:?}");
    }

    #[test]
    fn the_rate_learned_between_plays_keeps_the_first_play_on_time() {
        let mut steer = Steer::default();
        let card_ppm = -80.0;
        for block in 0..2_000u64 {
            let frames = block * 480;
            let t = (frames as f64 / 48_000.0 * 1e9 / (1.0 + card_ppm / 1e6)) as i64;
            steer.idle(t, frames, 48_000);
        }
        assert!((steer.integral_ppm + card_ppm).abs() < 2.0, "{steer:?}");
        steer.restart();
        let mut p = Pacer::new(48_000, 1, 0).unwrap();
        let (errors, _) = run_with(&mut p, &mut steer, card_ppm, 0, 20);
        let worst = errors.iter().map(|e| e.abs()).max().unwrap();
        assert!(worst < 20_000, "worst {worst} ns");
    }

    #[test]
    fn the_loop_closes_a_late_start_without_overshooting_much() {
        let (errors, _) = run_loop(-50.0, 500_000, 30);
        assert!(
            errors[1_000].abs() < 150_000,
            "{} ns after 10 s",
            errors[1_000]
        );
        assert!(errors.last().unwrap().abs() < 10_000);
        let undershoot = errors.iter().min().unwrap();
        assert!(*undershoot > -150_000, "{undershoot} ns");
    }

    #[test]
    fn hold_plays_silence_and_keeps_the_position() {
        let mut p = Pacer::new(48_000, 2, 100).unwrap();
        let mut out = Vec::new();
        let mut pull = job(vec![0.5; 10_000]);
        p.hold(20);
        p.render(&mut out, 20, &mut pull).unwrap();
        assert!(out.iter().all(|s| *s == 0.0));
        assert_eq!(p.position(), 100.0);
        p.render(&mut out, 100, &mut pull).unwrap();
        assert_eq!(p.position(), 200.0);
    }
}
