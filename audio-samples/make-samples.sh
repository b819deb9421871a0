#!/usr/bin/env bash
# Regenerates every sample in this folder from nothing but espeak-ng, sox and ffmpeg.
# Output is deterministic for a given set of tool versions (bit-exact flags everywhere).
# Usage: audio-samples/make-samples.sh   (needs: espeak-ng sox ffmpeg)
set -euo pipefail
cd "$(dirname "$0")"
for tool in espeak-ng sox ffmpeg; do
  command -v "$tool" >/dev/null || { echo "make-samples: $tool is not installed" >&2; exit 1; }
done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
bitexact=(-fflags +bitexact -flags:a +bitexact -map_metadata -1)

# --- sources (WAV, 16-bit) ---------------------------------------------------------------
# 1. A commune announcement, spoken by espeak-ng's Northern Vietnamese voice (22.05 kHz mono).
espeak-ng -v vi -s 150 -a 80 -w "$work/announcement.wav" \
  "Thông báo của Ủy ban nhân dân xã Hạ Long. Sáng thứ bảy, bà con đưa trẻ dưới năm tuổi đến trạm y tế xã để tiêm vắc xin."
# 2. A two-tone chime (ding-dong) played before announcements: 44.1 kHz stereo.
sox -n -r 44100 -c 1 -b 16 "$work/ding.wav" synth 0.6 sine 880 fade q 0.005 0.6 0.55 vol 0.5
sox -n -r 44100 -c 1 -b 16 "$work/dong.wav" synth 0.9 sine 660 fade q 0.005 0.9 0.85 vol 0.5
sox "$work/ding.wav" "$work/dong.wav" -c 2 "$work/chime.wav"
# 3. A short news programme: speech over a quiet plucked-string music bed, 32 kHz stereo.
espeak-ng -v vi -s 160 -w "$work/news-speech.wav" \
  "Bản tin thời sự xã Hạ Long. Hôm nay, xã tổ chức ra quân làm sạch đường làng, ngõ xóm."
notes=(C3 E3 G3 C4 A2 C3 E3 A3 F2 A2 C3 F3 G2 B2 D3 G3)
parts=()
for i in "${!notes[@]}"; do
  sox -n -r 32000 -c 1 -b 16 "$work/n$i.wav" synth 0.5 pluck "${notes[$i]}" vol 0.6
  parts+=("$work/n$i.wav")
done
sox "${parts[@]}" "$work/bed.wav"
sox -v 0.7 "$work/news-speech.wav" -r 32000 "$work/speech32.wav" pad 0.8 0.4
sox -m -v 1.0 "$work/speech32.wav" -v 0.3 "$work/bed.wav" -c 2 -b 16 "$work/news.wav" trim 0 8 fade t 0 8 1

# --- every main sample in every format staff are likely to upload -------------------------
for name in announcement chime news; do
  src="$work/$name.wav"
  ff -i "$src" "${bitexact[@]}" -c:a pcm_s16le "$name.wav"
  ff -i "$src" "${bitexact[@]}" -c:a libmp3lame -b:a 128k "$name.mp3"
  ff -i "$src" "${bitexact[@]}" -c:a aac -b:a 96k -movflags +faststart "$name.m4a"
  ff -i "$src" "${bitexact[@]}" -c:a libvorbis -q:a 4 "$name.ogg"
  ff -i "$src" "${bitexact[@]}" -c:a flac "$name.flac"
done

# --- format coverage: one short clip per container/codec variant the node must play --------
mkdir -p formats unsupported
tone() { # tone RATE CHANNELS SECONDS OUT
  sox -n -r "$1" -c "$2" -b 16 "$4" synth "$3" sine 440 sine 554 fade q 0.01 "$3" 0.01 vol 0.5
}
tone 44100 2 1.0 "$work/tone.wav"
for fmt in u8 s16le s24le s32le f32le; do
  ff -i "$work/tone.wav" "${bitexact[@]}" -c:a "pcm_$fmt" "formats/tone-$fmt.wav"
done
ff -i "$work/tone.wav" "${bitexact[@]}" -c:a adpcm_ima_wav "formats/tone-ima-adpcm.wav"
ff -i "$work/tone.wav" "${bitexact[@]}" -c:a pcm_s16be -f aiff "formats/tone.aiff"
ff -i "$work/tone.wav" "${bitexact[@]}" -c:a mp2 -b:a 192k "formats/tone.mp2"
ff -i "$work/tone.wav" "${bitexact[@]}" -c:a libmp3lame -q:a 4 "formats/tone-vbr.mp3"          # VBR, Xing/LAME header
ff -i "$work/tone.wav" "${bitexact[@]}" -c:a libmp3lame -b:a 128k -write_xing 0 "formats/tone-cbr-noxing.mp3"
ff -i "$work/tone.wav" "${bitexact[@]}" -ar 24000 -c:a libmp3lame -b:a 64k "formats/tone-mpeg2.mp3"  # MPEG-2 layer III
ff -i "$work/tone.wav" "${bitexact[@]}" -ar 11025 -ac 1 -c:a libmp3lame -b:a 32k "formats/tone-mpeg25.mp3"  # MPEG-2.5
ff -f lavfi -i "color=c=0x2e7d32:s=64x64" -frames:v 1 "$work/cover.png"
ff -i "formats/tone-vbr.mp3" -i "$work/cover.png" -map 0 -map 1 -c copy -id3v2_version 3 \
  -metadata title="Thông báo" -metadata:s:v comment="Cover (front)" "formats/tone-id3-cover.mp3"
sox -n -r 192000 -c 2 -b 24 "$work/hires.wav" synth 0.5 sine 440 sine 554 fade q 0.01 0.5 0.01 vol 0.5
ff -i "$work/hires.wav" "${bitexact[@]}" -c:a flac "formats/tone-24bit-192k.flac"
ff -i "$work/tone.wav" "${bitexact[@]}" -ac 1 -c:a aac -b:a 64k "formats/tone-aac-mono.m4a"
# Opus is not in the node's decoder set; kept to test the "unsupported codec" message.
ff -i "$work/tone.wav" "${bitexact[@]}" -ar 48000 -c:a libopus -b:a 32k "unsupported/tone-opus.ogg"



# --- the decoder fuzz target's seed corpus: tiny real files of each kind -------------------
corpus=../speaker-node/fuzz/corpus/decode
mkdir -p "$corpus"
short() { ff -i formats/tone-s16le.wav -t "$1" "${bitexact[@]}" "${@:3}" "$corpus/$2"; }
short 0.1 tone.wav
short 0.1 tone-adpcm.wav -c:a adpcm_ima_wav
short 0.1 tone.aiff -c:a pcm_s16be -f aiff
short 0.1 tone.flac -c:a flac
short 0.3 tone.mp3 -c:a libmp3lame -b:a 32k
short 0.3 tone-mpeg25.mp3 -ar 11025 -ac 1 -c:a libmp3lame -b:a 8k
short 0.3 tone.mp2 -c:a mp2 -b:a 64k
short 0.3 tone.m4a -c:a aac -b:a 32k
short 0.3 tone.ogg -c:a libvorbis
cp formats/tone-id3-cover.mp3 "$corpus/"
du -ch ./*.* formats unsupported | tail -1
