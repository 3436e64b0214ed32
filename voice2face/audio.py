"""Audio front end: decode any clip, keep only the speech, and turn it into log-mel frames.

After Wen et al. 2019: 16 kHz mono, silence removed by WebRTC VAD (mode 2,
20 ms frames), 64-band log-mel spectrograms (25 ms window, 10 ms hop,
20-7200 Hz) normalised per band over the utterance.

Decoding goes through soundfile (wav, flac, ogg/vorbis/opus, mp3) and falls
back to PyAV's bundled FFmpeg for what browsers record (webm/opus, m4a).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence, Union

import librosa
import numpy as np
import soundfile
import torch
import webrtcvad

from .errors import AudioError, Voice2FaceError

#: Longest stretch of a file that is decoded. Longer files are not refused: only
#: their first MAX_AUDIO_SECONDS are read (never the whole file), and the result
#: says so. Faces stop changing long before this (see the duration sweep).
MAX_AUDIO_SECONDS = 300.0

#: What `load_audio` accepts: a path, the file's bytes, or Gradio's (rate, samples) pair.
AudioSource = Union[str, Path, bytes, tuple]

SUPPORTED_FORMATS = "wav, flac, ogg/opus, mp3, webm, m4a"


@dataclass(frozen=True)
class FrontEndConfig:
    """How a voice encoder wants its input frames; stored in every checkpoint."""

    sample_rate: int = 16000
    n_mels: int = 64
    n_fft: int = 1024
    win_ms: float = 25.0
    hop_ms: float = 10.0
    f_min: float = 20.0
    f_max: float = 7200.0
    log_compress: bool = True
    normalise: bool = True  # per-band mean/variance over the utterance (CMVN)
    target_dbfs: float | None = None  # scale the speech to this RMS level first (None: keep the gain)
    vad_mode: int = 2
    vad_frame_ms: int = 20
    vad_padding_frames: int = 2  # keep this many VAD frames around speech so word edges survive

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.win_ms / 1000)

    def frames_to_seconds(self, frames: int) -> float:
        return frames * self.hop_ms / 1000


@dataclass
class Audio:
    """Decoded audio as float32 mono, plus what the input looked like."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_seconds: float  # length of the whole input, even where only part was read
    truncated: bool  # True when only the first MAX_AUDIO_SECONDS were read

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


# --------------------------------------------------------------------------- decoding


def load_audio(
    source: AudioSource, sample_rate: int = 16000, max_seconds: float = MAX_AUDIO_SECONDS
) -> Audio:
    """Decode `source` to float32 mono at `sample_rate`, reading at most `max_seconds`.

    `source` is a file path, the bytes of a file, or a `(sample_rate, samples)`
    pair as `gr.Audio(type="numpy")` gives it (int16/int32/float, any channels).
    """
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError("Audio given as a tuple must be (sample_rate, samples).")
        rate, data = int(source[0]), np.asarray(source[1])
        if rate <= 0:
            raise AudioError(f"The sample rate must be positive, got {rate}.")
        mono, channels = _to_float_mono(data)
        total = len(mono) / rate
        keep = int(max_seconds * rate)
        truncated = len(mono) > keep
        mono = mono[:keep]
    elif isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioError("The audio file is empty (0 bytes).")
        mono, rate, channels, total, truncated = _decode(io.BytesIO(source), "the uploaded file", max_seconds)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"No audio file at {path}.")
        if path.stat().st_size == 0:
            raise AudioError(f"The audio file {path.name} is empty (0 bytes).")
        mono, rate, channels, total, truncated = _decode(path, path.name, max_seconds)
    else:
        raise AudioError(f"Cannot read audio from a {type(source).__name__}; give a path, bytes or (rate, samples).")

    if mono.size == 0:
        raise AudioError("The audio holds no samples.")
    if not np.isfinite(mono).all():
        bad = int((~np.isfinite(mono)).sum())
        raise AudioError(f"The audio holds {bad} NaN or infinite samples; it is damaged and cannot be used.")
    if rate != sample_rate:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq").astype(np.float32)
    return Audio(mono, sample_rate, rate, channels, total, truncated)


def _decode(src, name: str, max_seconds: float):
    """Try soundfile first (fast, exact), then PyAV (browser formats)."""
    try:
        return _decode_soundfile(src, name, max_seconds)
    except AudioError:
        raise
    except Exception as sf_error:  # libsndfile does not know the format: try FFmpeg
        if hasattr(src, "seek"):
            src.seek(0)
        try:
            return _decode_pyav(src, max_seconds)
        except AudioError:
            raise
        except Exception:
            raise AudioError(
                f"Could not decode {name}: it is not an audio file we can read "
                f"(supported: {SUPPORTED_FORMATS}), or it is damaged. Details: {sf_error}"
            ) from None


def _decode_soundfile(src, name: str, max_seconds: float):
    with soundfile.SoundFile(src) as f:
        rate, channels, frames = f.samplerate, f.channels, f.frames
        missing = _wav_missing_bytes(src) if f.format in ("WAV", "WAVEX") else 0
        if missing:
            bytes_per_second = rate * channels * max(1, _SUBTYPE_BYTES.get(f.subtype, 2))
            raise AudioError(
                f"{name[:1].upper()}{name[1:]} is truncated: its header promises {missing / bytes_per_second + frames / rate:.2f} s "
                f"of audio but only {frames / rate:.2f} s are in the file. Upload the complete file."
            )
        wanted = min(frames, int(max_seconds * rate))
        data = f.read(wanted, dtype="float32", always_2d=True)
    return data.mean(axis=1, dtype=np.float32), rate, channels, frames / rate, frames > wanted


_SUBTYPE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _wav_missing_bytes(src) -> int:
    """Bytes of sample data a RIFF/WAVE header promises that the file does not hold.

    libsndfile quietly plays what is there, so a cut-off upload would pass
    unnoticed without this check. Streaming writers that leave the size as 0
    or 0xFFFFFFFF make no promise and are not flagged.
    """
    if isinstance(src, io.BytesIO):
        buffer = src.getbuffer()
        total, header = len(buffer), bytes(buffer[:65536])
    else:
        total = Path(src).stat().st_size
        with open(src, "rb") as f:
            header = f.read(65536)
    pos = 12
    while pos + 8 <= len(header):
        chunk, size = header[pos : pos + 4], int.from_bytes(header[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            return 0 if size in (0, 0xFFFFFFFF) else max(0, size - (total - pos - 8))
        pos += 8 + size + (size & 1)
    return 0


def _decode_pyav(src, max_seconds: float):
    import av  # imported here: only needed for formats libsndfile cannot read

    with av.open(src) as container:
        if not container.streams.audio:
            raise AudioError("The file has no audio track.")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels
        planar = av.AudioResampler(format="fltp")  # float32, one row per channel, same rate
        chunks, read, truncated = [], 0, False
        limit = int(max_seconds * rate)
        for frame in container.decode(stream):
            for out in planar.resample(frame):
                block = out.to_ndarray().mean(axis=0, dtype=np.float32)
                chunks.append(block)
                read += len(block)
            if read >= limit:
                truncated = True
                break
        duration = container.duration / av.time_base if container.duration else read / rate
    if not chunks:
        raise AudioError("The file's audio track holds no samples.")
    mono = np.concatenate(chunks)[:limit]
    return mono, rate, channels, max(duration, len(mono) / rate), truncated


def _to_float_mono(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Any channel layout and sample type -> float32 mono in [-1, 1] and the channel count."""
    if data.ndim == 1:
        data = data[:, None]
    elif data.ndim == 2:
        if data.shape[0] < data.shape[1] and data.shape[0] <= 16:  # (channels, samples)
            data = data.T
    else:
        raise AudioError(f"Audio samples must be 1-D or 2-D, got shape {data.shape}.")
    if data.dtype == np.int16:
        data = data / 32768.0
    elif data.dtype == np.int32:
        data = data / 2147483648.0
    elif data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) / 128.0
    elif not np.issubdtype(data.dtype, np.floating):
        raise AudioError(f"Unsupported sample type {data.dtype}; use int16, int32 or float.")
    return data.mean(axis=1).astype(np.float32), data.shape[1]


# --------------------------------------------------------------------------- voice activity

#: Below this peak level (-60 dBFS) a clip counts as silent.
SILENCE_PEAK = 1e-3


def speech_frames(samples: np.ndarray, config: FrontEndConfig) -> np.ndarray:
    """One bool per `vad_frame_ms` frame of 16 kHz `samples`: does WebRTC VAD hear speech?

    Each speech frame also keeps `vad_padding_frames` neighbours on each side,
    so the soft edges of words are not clipped.
    """
    frame = config.sample_rate * config.vad_frame_ms // 1000
    n = len(samples) // frame
    if n == 0:
        return np.zeros(0, dtype=bool)
    raw = (np.clip(samples[: n * frame], -1, 1) * 32767).astype(np.int16).tobytes()
    vad = webrtcvad.Vad(config.vad_mode)
    step = frame * 2  # bytes per frame
    voiced = np.fromiter(
        (vad.is_speech(raw[i * step : (i + 1) * step], config.sample_rate) for i in range(n)), dtype=bool, count=n
    )
    pad = config.vad_padding_frames
    if pad:
        voiced = np.convolve(voiced, np.ones(2 * pad + 1), mode="full")[pad : pad + n] > 0
    return voiced


def remove_silence(samples: np.ndarray, config: FrontEndConfig) -> np.ndarray:
    """The speech in `samples` (16 kHz), silent stretches cut out; raises if there is none."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak < SILENCE_PEAK:
        raise AudioError("The recording is silent. Check the microphone and record again.")
    voiced = speech_frames(samples, config)
    frame = config.sample_rate * config.vad_frame_ms // 1000
    if not voiced.any():
        raise AudioError(
            f"No speech was found in the {len(samples) / config.sample_rate:.1f} s of audio. "
            "Record someone speaking, closer to the microphone."
        )
    speech = samples[: len(voiced) * frame].reshape(-1, frame)[voiced].reshape(-1)
    if len(speech) < config.win_length:
        raise AudioError(
            f"Only {1000 * len(speech) / config.sample_rate:.0f} ms of speech were found; "
            f"at least {config.win_ms:.0f} ms (one analysis window) are needed."
        )
    return speech


# --------------------------------------------------------------------------- features


@lru_cache(maxsize=8)
def mel_filterbank(config: FrontEndConfig) -> torch.Tensor:
    """librosa's Slaney mel filter bank as a (n_mels, n_fft // 2 + 1) tensor."""
    fb = librosa.filters.mel(
        sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.f_min, fmax=config.f_max
    )
    return torch.from_numpy(fb).float()


def log_mel(samples: np.ndarray | torch.Tensor, config: FrontEndConfig) -> torch.Tensor:
    """(n_mels, frames) mel power of 16 kHz samples, log-compressed if the config says so.

    One frame per `hop_ms`; per-band normalisation is left to `cmvn`, so that a
    cut of the frames can be normalised over itself.
    """
    x = torch.as_tensor(samples, dtype=torch.float32)
    if config.target_dbfs is not None:
        rms = x.square().mean().sqrt().clamp_min(1e-8)
        x = x * (10 ** (config.target_dbfs / 20) / rms)
    spec = torch.stft(
        x,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=torch.hann_window(config.win_length),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    mel = mel_filterbank(config) @ spec.abs().square()
    return torch.log(mel + 1e-6) if config.log_compress else mel


def cmvn(features: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit variance per band (dim -2) over time (dim -1)."""
    mean = features.mean(dim=-1, keepdim=True)
    std = features.std(dim=-1, keepdim=True, unbiased=False).clamp_min(1e-5)
    return (features - mean) / std


def pad_features(clips: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips (n_mels, T_i) -> a zero-padded batch (B, n_mels, max T_i) and the lengths T_i, as encoders take them."""
    lengths = torch.tensor([c.shape[-1] for c in clips])
    batch = torch.nn.utils.rnn.pad_sequence([c.T for c in clips], batch_first=True).transpose(1, 2)
    return batch, lengths


# --------------------------------------------------------------------------- duration cuts

Durations = Sequence[Union[float, None]]
WHOLE_CLIP_WORDS = {"full", "whole", "all", "none"}


def parse_durations(values: Iterable[object]) -> tuple[float | None, ...]:
    """Turn user durations (numbers, or 'full' for the whole clip) into seconds or None.

    Raises `Voice2FaceError` for zero, negative or non-numeric durations.
    """
    out: list[float | None] = []
    for value in values:
        if value is None or (isinstance(value, str) and value.strip().lower() in WHOLE_CLIP_WORDS):
            out.append(None)
            continue
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise Voice2FaceError(f"Duration {value!r} is not a number of seconds or 'full'.") from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise Voice2FaceError(f"Durations must be positive seconds, got {value!r}.")
        out.append(seconds)
    if not out:
        raise Voice2FaceError("Give at least one duration.")
    return tuple(out)


@dataclass(frozen=True)
class Cut:
    """The first `frames` frames of speech, standing for a requested duration."""

    requested: float | None  # seconds asked for; None = whole clip
    frames: int
    seconds: float  # seconds of speech the cut really holds
    capped: bool  # asked for more speech than the clip has: all of it was used

    @property
    def label(self) -> str:
        if self.requested is None:
            return f"whole clip: {self.seconds:.1f} s of speech"
        if self.capped:
            return f"asked {self.requested:g} s, clip has {self.seconds:.1f} s of speech"
        return f"first {self.seconds:.1f} s of speech"

    @property
    def short_label(self) -> str:
        """A caption that fits under a small thumbnail."""
        return f"{self.seconds:.1f} s (all)" if self.requested is None or self.capped else f"{self.seconds:.1f} s"


def plan_cuts(n_frames: int, durations: Durations, config: FrontEndConfig) -> list[Cut]:
    """Where to cut `n_frames` of speech for each duration (None = all of it)."""
    cuts = []
    for d in durations:
        if d is None:
            cuts.append(Cut(None, n_frames, config.frames_to_seconds(n_frames), False))
            continue
        wanted = max(1, round(d * 1000 / config.hop_ms))
        frames = min(wanted, n_frames)
        cuts.append(Cut(d, frames, config.frames_to_seconds(frames), wanted > n_frames))
    return cuts


# --------------------------------------------------------------------------- one utterance


@dataclass
class Utterance:
    """A decoded clip, its speech, and the speech's un-normalised features."""

    audio: Audio
    speech: np.ndarray  # 16 kHz samples with the silence removed
    features: torch.Tensor  # (n_mels, frames) from `log_mel`

    @property
    def speech_seconds(self) -> float:
        return len(self.speech) / self.audio.sample_rate


def prepare_utterance(source: AudioSource, config: FrontEndConfig, max_seconds: float = MAX_AUDIO_SECONDS) -> Utterance:
    """Decode, remove silence and compute features: everything before the networks."""
    audio = load_audio(source, config.sample_rate, max_seconds)
    speech = remove_silence(audio.samples, config)
    return Utterance(audio, speech, log_mel(speech, config))
