"""Decoding: any clip (path, bytes or Gradio's (rate, samples) pair) to float32 mono at one rate.

Files go through soundfile (wav, flac, ogg/vorbis/opus, mp3), falling back to
PyAV's bundled FFmpeg for what browsers record (webm/opus, m4a). Either way
the file is read block by block, each block downmixed and resampled before the
next is read, so memory stays near the size of the result whatever the header
claims; channels, rate and the number of samples decoded are checked against
`limits` before and while reading.

Untrusted files (uploads, the CLI's input) are decoded in a separate process
(`decoder_process`), so a crash in a native decoder costs one request, not the
server.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import soundfile
import soxr

from ..errors import AudioError
from ..limits import (
    FRAMES_CHECKED,
    MAX_CHANNELS,
    MAX_DECODED_FRAMES,
    MAX_DECODED_SAMPLES,
    MAX_SAMPLE_RATE,
    MIN_MEAN_FRAME_SECONDS,
    MIN_SAMPLE_RATE,
)

#: What `load_audio` accepts: a path, the file's bytes, or Gradio's (rate, samples) pair.
AudioSource = Union[str, Path, bytes, tuple]

SUPPORTED_FORMATS = "wav, flac, ogg/opus, mp3, webm, m4a"

#: A stream that stops this much short of the length its container declares was cut off.
TRUNCATION_TOLERANCE_S = 0.5


@dataclass
class Audio:
    """Decoded audio as float32 mono, plus what the input looked like."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_seconds: float  # length of the whole input, even where only part was read
    truncated: bool  # True when only the first part was read (the caps in `limits`)
    damaged_note: str = ""  # set when the file ended early or broke off mid-stream

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


# --------------------------------------------------------------------------- entry point


def source_name(source: str | Path | bytes) -> str:
    """How messages name a file: by its name, never its path (a server's temp path means nothing to a visitor)."""
    return "the uploaded file" if isinstance(source, (bytes, bytearray)) else f"the file {Path(source).name}"


def decode_file(source: str | Path | bytes, sample_rate: int, max_seconds: float) -> Audio:
    """Decode a file (path or bytes) in this process: soundfile first (fast, exact), then PyAV."""
    name = source_name(source)
    src = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    wav = _wav_header(src)
    if wav is not None and wav.channels is not None:
        check_layout(name, wav.rate, wav.channels)
    try:
        return _decode_soundfile(src, name, sample_rate, max_seconds, wav.missing_bytes if wav else 0)
    except AudioError:
        raise
    except Exception:  # libsndfile does not know the format: try FFmpeg
        if hasattr(src, "seek"):
            src.seek(0)
        try:
            return _decode_pyav(src, name, sample_rate, max_seconds)
        except AudioError:
            raise
        except Exception:
            raise AudioError(
                f"Could not decode {name}: it is not a sound file this app can read "
                f"(supported: {SUPPORTED_FORMATS}). Check that it is one of these, and complete."
            ) from None


# --------------------------------------------------------------------------- bounds


def check_layout(name: str, rate: float, channels: int) -> None:
    """Refuse headers that no recording has, before any sample is decoded."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{_capital(name)} declares a sample rate of {rate:g} Hz; "
            f"this app reads {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz."
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{_capital(name)} declares {channels} channels; this app reads 1 to {MAX_CHANNELS}.")


def _seconds_to_read(rate: float, channels: int, max_seconds: float) -> float:
    """`max_seconds`, shortened so that at most MAX_DECODED_SAMPLES samples are decoded."""
    return min(max_seconds, MAX_DECODED_SAMPLES / (rate * channels))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class _MonoResampler:
    """Downmixed blocks in, `target`-rate float32 out, one block at a time (soxr's streaming resampler)."""

    def __init__(self, source_rate: float, target_rate: int):
        self.same = source_rate == target_rate
        self.stream = None if self.same else soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")
        self.blocks: list[np.ndarray] = []

    def add(self, mono: np.ndarray, last: bool = False) -> None:
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        self.blocks.append(mono if self.same else self.stream.resample_chunk(mono, last=last))

    def finish(self) -> np.ndarray:
        if not self.same:
            self.add(np.zeros(0, np.float32), last=True)
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)


# --------------------------------------------------------------------------- soundfile


def _decode_soundfile(src, name: str, sample_rate: int, max_seconds: float, missing: int) -> Audio:
    """`missing`: bytes of sample data a WAV header promises that the file does not hold (`_wav_header`)."""
    with soundfile.SoundFile(src) as f:
        rate, channels, frames = f.samplerate, f.channels, f.frames
        check_layout(name, rate, channels)
        if missing:
            bytes_per_second = rate * channels * max(1, _SUBTYPE_BYTES.get(f.subtype, 2))
            raise AudioError(
                f"{_capital(name)} is truncated: its header promises {missing / bytes_per_second + frames / rate:.2f} s "
                f"of audio but only {frames / rate:.2f} s are in the file. Upload the complete file."
            )
        wanted = min(frames, int(_seconds_to_read(rate, channels, max_seconds) * rate))
        out, read, note = _MonoResampler(rate, sample_rate), 0, ""
        try:
            while read < wanted:
                block = f.read(min(rate, wanted - read), dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                out.add(block.mean(axis=1, dtype=np.float32))
                read += len(block)
        except (RuntimeError, soundfile.LibsndfileError):
            if read == 0:
                raise
            note = _damaged(name, read / rate)
        if not note and (read < wanted or (f.format == "OGG" and not _ogg_ends_cleanly(src))):
            note = _damaged(name, read / rate)
    return Audio(out.finish(), sample_rate, rate, channels, frames / rate, frames > wanted, note)


_SUBTYPE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _damaged(name: str, seconds_read: float) -> str:
    return (
        f"{_capital(name)} breaks off after {seconds_read:.1f} s (it was cut short or is damaged); "
        "the face is drawn from what could be read."
    )


def _tail(src, size: int = 65536) -> bytes:
    with _opened(src) as f:
        f.seek(max(0, f.seek(0, io.SEEK_END) - size))
        return f.read()


def _ogg_ends_cleanly(src) -> bool:
    """Whether an Ogg file's last page carries the end-of-stream flag; a cut-off upload lacks it
    (and Ogg declares no length that could be compared)."""
    tail = _tail(src)
    last = tail.rfind(b"OggS")
    return last >= 0 and len(tail) > last + 5 and bool(tail[last + 5] & 0x04)


#: The data size a WAV writer puts in the header when it writes to a pipe and cannot go back.
PIPE_DATA_SIZE = 0x7FFFF000


@dataclass
class _WavHeader:
    channels: int | None  # None when there is no fmt chunk
    rate: int | None
    missing_bytes: int  # sample data the header promises that the file does not hold


def _wav_header(src, most_chunks: int = 10_000) -> _WavHeader | None:
    """What a RIFF/WAVE file's chunks declare, or None if it is not one; read 8 bytes a chunk, wherever
    the chunks lie (a data chunk after a big metadata chunk lies past any fixed-size header), in one
    walk of at most `most_chunks`.

    The channels and rate come from the fmt chunk: libsndfile refuses a WAV of 65,535 channels
    outright, and PyAV then reports 0 of them. The missing bytes are checked because libsndfile
    quietly plays what is there, so a cut-off upload would pass unnoticed. Writers to a pipe cannot
    know the size and leave 0, 0xFFFFFFFF or (ffmpeg, sox, espeak-ng) 0x7FFFF000: those make no
    promise and are not flagged.
    """
    with _opened(src) as f:
        riff = f.read(12)
        if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            return None
        total = f.seek(0, io.SEEK_END)
        header, pos = _WavHeader(None, None, 0), 12
        for _ in range(most_chunks):
            f.seek(pos)
            head = f.read(8)
            if len(head) < 8:
                break
            chunk, size = head[:4], int.from_bytes(head[4:8], "little")
            if chunk == b"fmt ":
                fmt = f.read(8)
                if len(fmt) == 8:
                    header.channels, header.rate = int.from_bytes(fmt[2:4], "little"), int.from_bytes(fmt[4:8], "little")
            elif chunk == b"data":
                if 0 < size < PIPE_DATA_SIZE:
                    header.missing_bytes = max(0, size - (total - pos - 8))
                break
            pos += 8 + size + (size & 1)
    return header


@contextlib.contextmanager
def _opened(src):
    """`src` as a binary file: the BytesIO itself, its position put back afterwards, or the path opened."""
    if isinstance(src, io.BytesIO):
        position = src.tell()
        try:
            yield src
        finally:
            src.seek(position)
    else:
        with open(src, "rb") as f:
            yield f


# --------------------------------------------------------------------------- PyAV


def _decode_pyav(src, name: str, sample_rate: int, max_seconds: float) -> Audio:
    import av  # imported here: only needed for formats libsndfile cannot read

    with av.open(src) as container:
        if not container.streams.audio:
            raise AudioError(f"{_capital(name)} has no audio track.")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate or 0
        channels = stream.codec_context.layout.nb_channels
        check_layout(name, rate, channels)
        declared = container.duration / av.time_base if container.duration else 0.0
        # FFmpeg downmixes and resamples each frame: no multi-channel array is ever
        # handed to numpy (PyAV 18 crashes converting 8-plane float frames).
        mono = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        limit = int(_seconds_to_read(rate, channels, max_seconds) * sample_rate)
        blocks, read, truncated, note, source_samples = [], 0, False, "", 0
        try:
            for count, frame in enumerate(container.decode(stream)):
                tiny = count == FRAMES_CHECKED and source_samples < FRAMES_CHECKED * MIN_MEAN_FRAME_SECONDS * rate
                if count >= MAX_DECODED_FRAMES or tiny:
                    raise AudioError(
                        f"{_capital(name)} is cut into more than {count} pieces of audio"
                        + (f" of {1000 * source_samples / count / rate:.2f} ms each" if tiny else " (a clip of 300 s has about 15,000)")
                        + "; it is damaged or built to keep the decoder busy."
                    )
                source_samples += frame.samples
                for out in mono.resample(frame):
                    blocks.append(out.to_ndarray().reshape(-1))
                    read += out.samples
                if read >= limit:
                    truncated = True
                    break
            else:
                for out in mono.resample(None):  # flush the resampler
                    blocks.append(out.to_ndarray().reshape(-1))
                    read += out.samples
        except av.error.FFmpegError:
            if read == 0:
                raise
            note = _damaged(name, read / sample_rate)
    if not blocks:
        raise AudioError(f"{_capital(name)}'s audio track holds no samples.")
    samples = np.concatenate(blocks)[:limit].astype(np.float32, copy=False)
    seconds = len(samples) / sample_rate
    if not truncated and not note and declared - seconds > TRUNCATION_TOLERANCE_S:
        note = _damaged(name, seconds)
    return Audio(samples, sample_rate, int(rate), channels, max(declared, seconds), truncated, note)


# --------------------------------------------------------------------------- arrays


def decode_array(source: tuple, sample_rate: int, max_seconds: float) -> Audio:
    """A `(rate, samples)` pair, checked as strictly as a file's header."""
    if len(source) != 2:
        raise AudioError("Audio given as a tuple must be (sample_rate, samples).")
    rate = whole_rate(source[0])
    check_layout("the audio", rate, 1)
    try:
        data = np.asarray(source[1])
    except (TypeError, ValueError):
        raise AudioError("The samples must be a numeric array.") from None
    mono, channels = to_float_mono(data)
    keep = int(_seconds_to_read(rate, channels, max_seconds) * rate)
    samples = mono[:keep]
    if rate != sample_rate and samples.size:
        samples = soxr.resample(samples, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return Audio(samples, sample_rate, rate, channels, len(mono) / rate, len(mono) > keep)


def whole_rate(value: object) -> int:
    """A sample rate as an int; refuses text, NaN and fractions instead of rounding them."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AudioError(f"The sample rate must be a whole number of Hz, got {value!r}.")
    if not math.isfinite(value) or value != int(value):
        raise AudioError(f"The sample rate must be a whole number of Hz, got {value!r}.")
    return int(value)


def to_float_mono(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Any channel layout and sample type -> float32 mono in [-1, 1] and the channel count.

    A 2-D array may be (samples, channels) or (channels, samples): the shorter
    side is the channels, and there may be at most MAX_CHANNELS of them.
    """
    if data.ndim == 1:
        data = data[:, None]
    elif data.ndim == 2:
        if min(data.shape) > MAX_CHANNELS:
            raise AudioError(
                f"2-D audio must be (samples, channels) with at most {MAX_CHANNELS} channels, got shape {data.shape}."
            )
        if data.shape[0] < data.shape[1]:  # (channels, samples)
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
