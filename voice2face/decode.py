"""Decoding: any clip (path, bytes or Gradio's (rate, samples) pair) to float32 mono at one rate.

Decoding goes through soundfile (wav, flac, ogg/vorbis/opus, mp3) and falls
back to PyAV's bundled FFmpeg for what browsers record (webm/opus, m4a).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import librosa
import numpy as np
import soundfile

from .errors import AudioError
from .limits import MAX_AUDIO_SECONDS


#: What `load_audio` accepts: a path, the file's bytes, or Gradio's (rate, samples) pair.
AudioSource = Union[str, Path, bytes, tuple]

SUPPORTED_FORMATS = "wav, flac, ogg/opus, mp3, webm, m4a"


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
