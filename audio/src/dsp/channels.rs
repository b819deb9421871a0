/// Maps interleaved frames from one channel count to another with a fixed mix matrix.
///
/// Mono is copied to every output; anything to mono is the average of its inputs; 5.1
/// (WAV order FL FR FC LFE BL BR) to stereo uses the ITU-R BS.775 coefficients, scaled so
/// a full-scale input cannot clip. Other layouts keep their first channels.
pub struct ChannelMapper {
    inputs: usize,
    outputs: usize,
    /// `outputs` rows of `inputs` coefficients; `None` for the identity.
    matrix: Option<Vec<f32>>,
    out: Vec<f32>,
}

impl ChannelMapper {
    pub fn new(inputs: usize, outputs: usize) -> Self {
        let matrix = (inputs != outputs).then(|| mix_matrix(inputs, outputs));
        ChannelMapper {
            inputs,
            outputs,
            matrix,
            out: Vec::new(),
        }
    }

    /// Returns the mapped samples; the identity borrows the input as it is.
    pub fn process<'a>(&'a mut self, input: &'a [f32]) -> &'a [f32] {
        let Some(matrix) = &self.matrix else {
            return input;
        };
        let frames = input.len() / self.inputs;
        self.out.clear();
        self.out.reserve(frames * self.outputs);
        for frame in input.chunks_exact(self.inputs) {
            for row in matrix.chunks_exact(self.inputs) {
                self.out
                    .push(row.iter().zip(frame).map(|(c, s)| c * s).sum());
            }
        }
        &self.out
    }
}

fn mix_matrix(inputs: usize, outputs: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; inputs * outputs];
    let mut set = |o: usize, i: usize, v: f32| m[o * inputs + i] = v;
    if inputs == 1 {
        (0..outputs).for_each(|o| set(o, 0, 1.0));
    } else if outputs == 1 {
        (0..inputs).for_each(|i| set(0, i, 1.0 / inputs as f32));
    } else if inputs == 6 && outputs == 2 {
        // L = FL + 0.707 FC + 0.707 BL, R likewise; LFE dropped; normalised by 1 + 2 * 0.707.
        const C: f32 = std::f32::consts::FRAC_1_SQRT_2;
        let norm = 1.0 / (1.0 + 2.0 * C);
        for (o, (front, back)) in [(0, 4), (1, 5)].into_iter().enumerate() {
            set(o, front, norm);
            set(o, 2, C * norm);
            set(o, back, C * norm);
        }
    } else {
        (0..inputs.min(outputs)).for_each(|c| set(c, c, 1.0));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_borrows_input() {
        let mut m = ChannelMapper::new(2, 2);
        let input = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(m.process(&input), &input);
    }

    #[test]
    fn mono_to_stereo_duplicates() {
        let mut m = ChannelMapper::new(1, 2);
        assert_eq!(m.process(&[0.5, -0.25]), &[0.5, 0.5, -0.25, -0.25]);
    }

    #[test]
    fn stereo_to_mono_averages() {
        let mut m = ChannelMapper::new(2, 1);
        assert_eq!(m.process(&[1.0, 0.0, -0.5, -0.5]), &[0.5, -0.5]);
    }

    #[test]
    fn five_one_to_stereo_never_exceeds_full_scale() {
        let mut m = ChannelMapper::new(6, 2);
        let out = m.process(&[1.0; 6]).to_vec();
        assert!(out.iter().all(|s| (*s - 1.0).abs() < 1e-6), "{out:?}");
    }

    #[test]
    fn stereo_to_quad_keeps_front_pair() {
        let mut m = ChannelMapper::new(2, 4);
        assert_eq!(m.process(&[0.1, 0.2]), &[0.1, 0.2, 0.0, 0.0]);
    }
}
