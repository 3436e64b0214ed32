"""Labelled real data of one kind: face photos with age and gender, speech with the speaker's.

- UTKFace ("crop_part1" and alike): aligned, cropped face photos named
  ``age_gender_race_date.jpg.chip.jpg`` (gender 0 = male, 1 = female).
  Non-commercial research licence.
- EmoDB (Berlin Database of Emotional Speech): ``wav/SSTTTEV.flac``, the first
  two characters the speaker, and ``speakers.csv`` (speaker, gender, age).

Nothing here downloads: the paths are given by the user.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..errors import Voice2FaceError
from .paired import AUDIO_SUFFIXES, IMAGE_SUFFIXES


@dataclass(frozen=True)
class FacePhoto:
    path: Path
    age: int
    gender: str  # "m" or "f"


def read_utkface(folder: str | Path, min_age: int = 0) -> list[FacePhoto]:
    """Every photo in `folder` whose name parses as age_gender_..., aged `min_age` or more, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise Voice2FaceError(f"No photo folder at {folder}.")
    photos = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        parts = path.name.split("_")
        if len(parts) < 4 or not parts[0].isdigit() or parts[1] not in ("0", "1") or not parts[2].isdigit():
            continue  # a few UTKFace names lack a field (61_1_2017...): skip what does not parse
        if int(parts[0]) >= min_age:
            photos.append(FacePhoto(path, int(parts[0]), "mf"[int(parts[1])]))
    if not photos:
        raise Voice2FaceError(f"No photo in {folder} is named age_gender_... with age >= {min_age} (UTKFace naming).")
    return photos


def load_photos(photos: list[FacePhoto], size: int = 64) -> torch.Tensor:
    """(N, 3, size, size) uint8: every photo decoded once and kept in memory (6,000 faces: 74 MB)."""
    out = torch.empty(len(photos), 3, size, size, dtype=torch.uint8)
    for i, photo in enumerate(tqdm(photos, desc="reading photos", unit="photo", leave=False)):
        with Image.open(photo.path) as im:
            pixels = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))
        out[i] = torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    return out


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1], as the networks take them."""
    return pixels.float() / 127.5 - 1


#: The face ages (years) that fit each age band of the synthetic voices (`synthetic.Speaker.age_band`).
AGE_BANDS = {"young": (18.0, 30.0), "adult": (28.0, 45.0), "older": (50.0, 75.0)}


@dataclass(frozen=True)
class Speaker:
    name: str
    gender: str  # "m" or "f"
    age: int
    clips: tuple[Path, ...]


def read_emodb(root: str | Path) -> list[Speaker]:
    """EmoDB's speakers with their clips, from ``root/speakers.csv`` and ``root/wav/``."""
    root = Path(root)
    table = root / "speakers.csv"
    if not table.is_file():
        raise Voice2FaceError(f"{root} is not an EmoDB folder: it has no speakers.csv.")
    clips = sorted(p for p in (root / "wav").glob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    speakers = []
    with open(table, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            own = tuple(c for c in clips if c.name[:2] == row["speaker"])
            if own:
                speakers.append(Speaker(row["speaker"], row["gender"].strip().lower()[:1], int(row["age"]), own))
    if not speakers:
        raise Voice2FaceError(f"No clip in {root / 'wav'} belongs to a speaker of {table}.")
    return speakers


@dataclass(frozen=True)
class PairedSpeaker:
    """A real person with their own voice and a photo of their face (talking pairs)."""

    name: str
    gender: str  # "m" or "f", as judged from the face
    age: int  # years, as judged from the face (noisy)
    clips: tuple[Path, ...]
    face: Path


def read_talking_pairs(root: str | Path) -> list[PairedSpeaker]:
    """``root/manifest.csv`` (id, judged_gender, judged_age) and ``root/<id>/voice*.wav``, ``root/<id>/face.png``."""
    root = Path(root)
    table = root / "manifest.csv"
    if not table.is_file():
        raise Voice2FaceError(f"{root} is not a talking-pairs folder: it has no manifest.csv.")
    speakers = []
    with open(table, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            folder = root / row["id"]
            clips = tuple(sorted(p for p in folder.glob("voice*") if p.suffix.lower() in AUDIO_SUFFIXES))
            gender = row["judged_gender"].strip().lower()[:1]
            if clips and (folder / "face.png").is_file() and gender in ("m", "f"):
                speakers.append(PairedSpeaker(row["id"], gender, int(float(row["judged_age"])), clips, folder / "face.png"))
    if not speakers:
        raise Voice2FaceError(f"No speaker of {table} has a voice and a face.png in {root}.")
    return speakers


@dataclass(frozen=True)
class LabelledVoice:
    """A real speaker with self-reported (or, for speechocean762, stated) gender and age, and no face."""

    name: str
    gender: str  # "m" or "f"
    age_band: tuple[int, int]  # (low, high) years, e.g. (20, 29)
    age: int | None  # years, where the source gives them
    clips: tuple[Path, ...]
    language: str = ""  # the language or accent of its clips as given, e.g. "ta" or "en (l1 mandarin)" ("": not given)


def band_middle(band: tuple[int, int]) -> float:
    """The middle of an age band (low, high) in years: (20, 29) covers 20 to 29.99, so 25."""
    return (band[0] + band[1] + 1) / 2


def read_labelled_voices(root: str | Path) -> list[LabelledVoice]:
    """``root/speakers.csv`` (speaker, gender, age, age_band) and ``root/clips.csv`` (file, speaker): the
    `voices_labelled` folder's speakers with their clips, sorted by name."""
    root = Path(root)
    if not (root / "speakers.csv").is_file() or not (root / "clips.csv").is_file():
        raise Voice2FaceError(f"{root} is not a labelled-voices folder: it needs speakers.csv and clips.csv.")
    clips: dict[str, list[Path]] = {}
    with open(root / "clips.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if (root / row["file"]).is_file():
                clips.setdefault(row["speaker"], []).append(root / row["file"])
    speakers = []
    with open(root / "speakers.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            band = row["age_band"].split("-")
            gender = row["gender"].strip().lower()[:1]
            if row["speaker"] in clips and gender in ("m", "f") and len(band) == 2 and all(b.isdigit() for b in band):
                age = int(row["age"]) if row.get("age", "").strip().isdigit() else None
                language = row.get("accent_or_language", "").strip().lower()  # "zh", "sv-se", "en (l1 mandarin)"
                speakers.append(LabelledVoice(row["speaker"], gender, (int(band[0]), int(band[1])), age,
                                              tuple(sorted(clips[row["speaker"]])), language))  # fmt: skip
    if not speakers:
        raise Voice2FaceError(f"No speaker of {root / 'speakers.csv'} has a clip listed in clips.csv.")
    return sorted(speakers, key=lambda s: s.name)


def held_out_labelled(speakers: list[LabelledVoice], fraction: float) -> set[str]:
    """The names of about `fraction` of the speakers, drawn in every (gender, age band) group with two or
    more speakers, by a hash of the name: the same split on every machine, whatever the order of the files."""
    groups: dict[tuple[str, tuple[int, int]], list[str]] = {}
    for s in speakers:
        groups.setdefault((s.gender, s.age_band), []).append(s.name)
    held = set()
    for names in groups.values():
        if len(names) >= 2:
            ranked = sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())
            held.update(ranked[: max(1, round(fraction * len(names)))])
    return held
