//! Amplifier power: a command run to switch the amplifier on a lead time before a play
//! and another to switch it off once nothing has played for a while. For a GPIO line on
//! the board, the commands are libgpiod's (`gpioset gpiochip0 17=1` / `17=0`), which drive
//! the Linux GPIO character device.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct AmpConfig {
    pub on_command: Option<String>,
    pub off_command: Option<String>,
    /// On this long before the first sample (amplifiers need to settle).
    pub lead_ms: u64,
    /// Off after this long without audio.
    pub tail_ms: u64,
}

pub struct Amplifier {
    cfg: AmpConfig,
    on: bool,
    idle_since: Option<Instant>,
}

impl Amplifier {
    pub fn new(cfg: AmpConfig) -> Self {
        Amplifier {
            cfg,
            on: false,
            idle_since: None,
        }
    }

    pub fn lead_ns(&self) -> i64 {
        self.cfg.lead_ms as i64 * 1_000_000
    }

    /// Called every playout turn with whether the amplifier is wanted now.
    pub fn set(&mut self, wanted: bool) {
        if wanted {
            self.idle_since = None;
            if !self.on {
                self.on = true;
                run(self.cfg.on_command.as_deref(), "on");
            }
            return;
        }
        if !self.on {
            return;
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_millis(self.cfg.tail_ms) {
            self.on = false;
            self.idle_since = None;
            run(self.cfg.off_command.as_deref(), "off");
        }
    }
}

/// Runs a switch command without holding up the audio thread.
fn run(command: Option<&str>, what: &'static str) {
    let Some(command) = command.filter(|c| !c.trim().is_empty()) else {
        return;
    };
    let command = command.to_string();
    std::thread::spawn(move || {
        match std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .status()
        {
            Ok(s) if s.success() => tracing::info!("amplifier {what}"),
            Ok(s) => tracing::warn!("amplifier {what}: `{command}` exited with {s}"),
            Err(e) => tracing::warn!("amplifier {what}: `{command}`: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_on_at_once_and_off_after_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("amp");
        let cfg = AmpConfig {
            on_command: Some(format!("echo on >> {}", file.display())),
            off_command: Some(format!("echo off >> {}", file.display())),
            lead_ms: 0,
            tail_ms: 50,
        };
        let mut amp = Amplifier::new(cfg);
        amp.set(true);
        amp.set(true);
        amp.set(false);
        std::thread::sleep(Duration::from_millis(80));
        amp.set(false);
        std::thread::sleep(Duration::from_millis(200));
        let log = std::fs::read_to_string(&file).unwrap();
        assert_eq!(log, "on\noff\n");
    }
}
