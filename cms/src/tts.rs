//! Text to speech through an external command, espeak-ng by default. The command is a
//! template so a better Vietnamese engine can be plugged in without code changes:
//! `{voice}`, `{speed}` (words per minute) and `{out}` (a WAV path to write) are replaced in each argument; the text goes
//! to the command's standard input, or into `{text}` if an argument names it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::{CmsError, Result};

pub const MAX_TEXT_CHARS: usize = 5000;
const TIMEOUT: Duration = Duration::from_secs(120);

pub fn default_command() -> Vec<String> {
    [
        "espeak-ng",
        "-v",
        "{voice}",
        "-s",
        "{speed}",
        "-w",
        "{out}",
        "--stdin",
    ]
    .map(String::from)
    .to_vec()
}

pub const DEFAULT_VOICE: &str = "vi";

/// The voices the web UI offers: espeak-ng's three Vietnamese accents, and the northern
/// one in a woman's register (a `+f3` variant). Another engine takes any safe name.
pub const VOICES: [(&str, &str, &str); 4] = [
    ("vi", "Giọng miền Bắc (nam)", "Northern (male)"),
    ("vi+f3", "Giọng miền Bắc (nữ)", "Northern (female)"),
    ("vi-vn-x-central", "Giọng miền Trung", "Central"),
    ("vi-vn-x-south", "Giọng miền Nam", "Southern"),
];

/// Speaking rate in words per minute: `{speed}` in the command.
pub const DEFAULT_SPEED: u16 = 150;
pub const SPEEDS: std::ops::RangeInclusive<u16> = 80..=260;

pub fn check_speed(speed: Option<u16>) -> Result<u16> {
    match speed {
        None => Ok(DEFAULT_SPEED),
        Some(s) if SPEEDS.contains(&s) => Ok(s),
        Some(s) => Err(CmsError::invalid(
            format!("Tốc độ đọc {s} không hợp lệ: từ 80 đến 260 từ mỗi phút."),
            format!("Speaking rate {s} is out of range: 80 to 260 words a minute."),
        )),
    }
}

/// Voice names reach a command line: keep them to a safe alphabet.
pub fn check_voice(voice: &str) -> Result<()> {
    let ok = !voice.is_empty()
        && voice.len() <= 40
        && voice
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CmsError::invalid(
            format!("Tên giọng đọc không hợp lệ: {voice}"),
            format!("Invalid voice name: {voice}"),
        ))
    }
}

pub async fn synthesize(
    template: &[String],
    text: &str,
    voice: &str,
    speed: u16,
    out: &Path,
) -> Result<()> {
    let Some((program, args)) = template.split_first() else {
        return Err(CmsError::Tts("no TTS command configured".into()));
    };
    let out_str = out.to_string_lossy();
    let uses_text_arg = args.iter().any(|a| a.contains("{text}"));
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{voice}", voice)
                .replace("{speed}", &speed.to_string())
                .replace("{out}", &out_str)
                .replace("{text}", text)
        })
        .collect();
    let mut child = Command::new(program)
        .args(&args)
        .stdin(if uses_text_arg {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CmsError::Tts(format!("cannot start {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| CmsError::Tts(format!("{program}: {e}")))?;
    }
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            CmsError::Tts(format!(
                "{program} took longer than {} s",
                TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| CmsError::Tts(format!("{program}: {e}")))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        // espeak-ng: "Error: The specified espeak-ng voice does not exist."
        if err.to_lowercase().contains("voice does not exist") {
            return Err(CmsError::invalid(
                format!("Không có giọng đọc {voice}."),
                format!("There is no voice {voice}."),
            ));
        }
        return Err(CmsError::Tts(format!(
            "{program} failed ({}): {}",
            output.status,
            err.lines().next().unwrap_or("")
        )));
    }
    Ok(())
}
