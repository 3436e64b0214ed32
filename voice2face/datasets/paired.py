"""Datasets of paired voices and faces, identity-disjoint splits, and the feature cache.

Four layouts are read into one list of `Identity`:

- ``voxceleb``: raw VoxCeleb1 ``wav/<voxceleb id>/<video id>/<n>.wav`` with
  ``vox1_meta.csv`` (tab-separated: VoxCeleb1 ID, VGGFace1 ID, Gender,
  Nationality, Set) and faces in ``<faces>/<VGGFace1 name>/*.jpg``.
- ``processed``: the authors' release, log-mel ``.npy`` per utterance under a
  folder per VoxCeleb id, aligned faces under a folder per name, same meta file.
- ``generic``: ``root/<identity>/voice/*.{wav,flac,...}``,
  ``root/<identity>/face/*.{jpg,png}``, optional ``root/meta.csv``
  (identity, gender, any extra columns).
- ``cache``: what `build_feature_cache` writes (``index.json`` plus ``.npy``
  log-mels), so training never decodes audio.

Only identities with both a voice and a face are kept.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from ..audio.front_end import FrontEndConfig, pad_features, prepare_utterance
from ..errors import Voice2FaceError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".webm", ".opus"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
CACHE_INDEX = "index.json"


@dataclass
class Identity:
    name: str
    voices: list[Path]  # audio files, or .npy log-mel features (frames, n_mels)
    faces: list[Path]
    gender: str | None = None  # "m" or "f" where the metadata says
    extra: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- metadata


def read_voxceleb_meta(path: str | Path) -> dict[str, dict[str, str]]:
    """VoxCeleb1 id -> {name, gender, nationality, set} from the tab-separated vox1_meta.csv."""
    rows: dict[str, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = [h.strip() for h in next(reader)]
        if header[:3] != ["VoxCeleb1 ID", "VGGFace1 ID", "Gender"]:
            raise Voice2FaceError(f"{path} does not look like vox1_meta.csv (header {header}).")
        for row in reader:
            if len(row) < 5 or not row[0].strip():
                continue
            vox_id, name, gender, nationality, split = (c.strip() for c in row[:5])
            rows[vox_id] = {"name": name, "gender": gender.lower(), "nationality": nationality, "set": split}
    return rows


def read_generic_meta(path: Path) -> dict[str, dict[str, str]]:
    """meta.csv of the generic layout: an `identity` column, `gender` and any others."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "identity" not in reader.fieldnames:
            raise Voice2FaceError(f"{path} needs an 'identity' column (and optionally 'gender').")
        return {row["identity"]: {k: v for k, v in row.items() if k != "identity"} for row in reader}


# --------------------------------------------------------------------------- layouts


def _files(folder: Path, suffixes: set[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def load_generic(root: Path) -> list[Identity]:
    meta_file = root / "meta.csv"
    meta = read_generic_meta(meta_file) if meta_file.is_file() else {}
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        row = dict(meta.get(folder.name, {}))
        gender = (row.pop("gender", "") or "").strip().lower()[:1] or None
        out.append(
            Identity(folder.name, _files(folder / "voice", AUDIO_SUFFIXES), _files(folder / "face", IMAGE_SUFFIXES), gender, row)
        )
    return out


def load_voxceleb(voice_root: Path, meta_csv: Path, face_root: Path, suffixes: set[str]) -> list[Identity]:
    """Raw VoxCeleb1 wavs (suffixes = audio) or the authors' log-mel npys (suffixes = {'.npy'})."""
    meta = read_voxceleb_meta(meta_csv)
    out = []
    for folder in sorted(p for p in voice_root.iterdir() if p.is_dir()):
        row = meta.get(folder.name)
        if row is None:
            continue
        extra = {"voxceleb_id": folder.name, "nationality": row["nationality"], "set": row["set"]}
        out.append(
            Identity(row["name"], _files(folder, suffixes), _files(face_root / row["name"], IMAGE_SUFFIXES), row["gender"] or None, extra)
        )
    return out


def load_cache(root: Path) -> list[Identity]:
    index = json.loads((root / CACHE_INDEX).read_text())
    return [
        Identity(i["name"], [root / v for v in i["voices"]], [Path(f) for f in i["faces"]], i.get("gender"), i.get("extra", {}))
        for i in index["identities"]
    ]


def load_identities(
    root: str | Path, layout: str = "auto", meta: str | Path | None = None, faces: str | Path | None = None,
    need_faces: bool = True,
) -> list[Identity]:
    """Read a dataset in any known layout; keep identities that have voices (and faces, if `need_faces`)."""
    root = Path(root)
    if not root.is_dir():
        raise Voice2FaceError(f"No dataset directory at {root}.")
    if layout == "auto":
        if (root / CACHE_INDEX).is_file():
            layout = "cache"
        elif meta is not None:
            layout = "processed" if any(root.rglob("*.npy")) else "voxceleb"
        else:
            layout = "generic"
    if layout in ("voxceleb", "processed"):
        if meta is None or faces is None:
            raise Voice2FaceError(f"The {layout} layout needs --meta vox1_meta.csv and --faces <face folder>.")
        suffixes = {".npy"} if layout == "processed" else AUDIO_SUFFIXES
        identities = load_voxceleb(root, Path(meta), Path(faces), suffixes)
    elif layout == "generic":
        identities = load_generic(root)
    elif layout == "cache":
        identities = load_cache(root)
    else:
        raise Voice2FaceError(f"Unknown layout {layout!r}: use auto, generic, voxceleb, processed or cache.")
    paired = [i for i in identities if i.voices and (i.faces or not need_faces)]
    if not paired:
        wanted = "both voices and faces" if need_faces else "voices"
        raise Voice2FaceError(f"No identity in {root} has {wanted} ({layout} layout).")
    return paired


# --------------------------------------------------------------------------- splits


def paper_split(identities: Sequence[Identity]) -> tuple[list[Identity], list[Identity]]:
    """Wen et al.'s split: names starting with A-E are test, the rest train."""
    test = [i for i in identities if i.name[:1].upper() in "ABCDE"]
    train = [i for i in identities if i.name[:1].upper() not in "ABCDE"]
    return train, test


def list_split(identities: Sequence[Identity], test_list: str | Path) -> tuple[list[Identity], list[Identity]]:
    """Test identities named one per line in `test_list`; all others train."""
    names = {line.strip() for line in Path(test_list).read_text().splitlines() if line.strip()}
    return [i for i in identities if i.name not in names], [i for i in identities if i.name in names]


def split_identities(identities: Sequence[Identity], split: str) -> tuple[list[Identity], list[Identity]]:
    """`split` is 'paper' or a path to a list of test identities."""
    train, test = paper_split(identities) if split == "paper" else list_split(identities, split)
    assert not {i.name for i in train} & {i.name for i in test}
    if not train:
        raise Voice2FaceError(f"The {split!r} split leaves no training identities.")
    return train, test


# --------------------------------------------------------------------------- features and faces


def voice_features(path: Path, front_end: FrontEndConfig) -> torch.Tensor:
    """(n_mels, frames) un-normalised features of one utterance: from a cached .npy or decoded audio."""
    if path.suffix == ".npy":
        array = np.load(path, mmap_mode="r")
        if array.ndim != 2:
            raise Voice2FaceError(f"{path} holds a {array.ndim}-D array; expected (frames, n_mels).")
        if array.shape[1] != front_end.n_mels and array.shape[0] == front_end.n_mels:
            array = array.T
        return torch.from_numpy(np.array(array.T, dtype=np.float32))  # a copy: the memory map is read-only
    return prepare_utterance(path, front_end, trusted=True).features


def load_face(path: Path, size: int = 64) -> torch.Tensor:
    """(3, size, size) in [-1, 1]."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BICUBIC)
        pixels = torch.from_numpy(np.asarray(im, dtype=np.float32).copy())
    return pixels.permute(2, 0, 1) / 127.5 - 1


def build_feature_cache(
    identities: Sequence[Identity], out: str | Path, front_end: FrontEndConfig, split: str | None = None
) -> Path:
    """Compute every utterance's log-mel once, as float16 (frames, n_mels) .npy, with an index.

    Utterances with no usable speech are skipped and counted, not fatal.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries, skipped = [], 0
    for identity in tqdm(identities, desc="caching features", unit="identity"):
        folder = out / _safe(identity.name)
        folder.mkdir(exist_ok=True)
        voices = []
        for n, voice in enumerate(identity.voices):
            target = folder / f"{n:05d}.npy"
            if not target.exists():
                try:
                    features = voice_features(voice, front_end)
                except Voice2FaceError:
                    skipped += 1
                    continue
                np.save(target, features.T.numpy().astype(np.float16))
            voices.append(str(target.relative_to(out)))
        if voices:
            entries.append(
                {
                    "name": identity.name,
                    "gender": identity.gender,
                    "extra": identity.extra,
                    "voices": voices,
                    "faces": [str(f.resolve()) for f in identity.faces],
                }
            )
    index = {"front_end": asdict(front_end), "identities": entries, "skipped_utterances": skipped}
    (out / CACHE_INDEX).write_text(json.dumps(index, indent=1))
    return out


def cached_front_end(root: str | Path) -> FrontEndConfig | None:
    """The front end a feature cache was built with, or None if `root` is not a cache."""
    index = Path(root) / CACHE_INDEX
    if not index.is_file():
        return None
    return FrontEndConfig(**json.loads(index.read_text())["front_end"])


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# --------------------------------------------------------------------------- torch datasets


class VoiceFaceDataset(Dataset):
    """One item per utterance: (features (n_mels, frames), a random face of the speaker, identity index).

    Features come un-normalised (the voice encoder normalises); `CropCollate` crops and pads them.
    """

    def __init__(self, identities: Sequence[Identity], front_end: FrontEndConfig, with_faces: bool = True):
        self.identities = list(identities)
        self.front_end, self.with_faces = front_end, with_faces
        self.items = [(label, voice) for label, ident in enumerate(self.identities) for voice in ident.voices]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        label, voice = self.items[index]
        features = voice_features(voice, self.front_end)
        if not self.with_faces:
            return features, label
        return features, mirrored_half_the_time(load_face(random.choice(self.identities[label].faces))), label


@dataclass
class CropCollate:
    """Crop every utterance of a batch to one random length in [min_frames, max_frames], as the paper.

    Shorter utterances are used whole and zero-padded; `lengths` tells the
    encoder where each one ends.
    """

    min_frames: int = 300
    max_frames: int = 800

    def __call__(self, batch):
        length = random.randint(self.min_frames, self.max_frames)
        crops = []
        for item in batch:
            features = item[0]
            start = random.randint(0, max(0, features.shape[1] - length))
            crops.append(features[:, start : start + length])
        padded, lengths = pad_features(crops)
        rest = [torch.utils.data.default_collate([item[k] for item in batch]) for k in range(1, len(batch[0]))]
        return (padded, lengths, *rest)


def mirrored_half_the_time(face: torch.Tensor) -> torch.Tensor:
    """A mirrored face is the same person: a free augmentation."""
    return face.flip(-1) if random.random() < 0.5 else face


class FaceDataset(Dataset):
    """(face, identity index) over every face of every identity."""

    def __init__(self, identities: Sequence[Identity]):
        self.items = [(f, label) for label, ident in enumerate(identities) for f in ident.faces]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        return mirrored_half_the_time(load_face(path)), label


class EmbeddingFaceDataset(Dataset):
    """(precomputed voice embedding, a random face of the speaker, identity index)."""

    def __init__(self, embeddings: torch.Tensor, labels: list[int], identities: Sequence[Identity]):
        self.embeddings, self.labels, self.identities = embeddings, labels, identities

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        label = self.labels[index]
        return self.embeddings[index], mirrored_half_the_time(load_face(random.choice(self.identities[label].faces))), label


def hold_out_utterances(identities: list[Identity], fraction: float) -> tuple[list[Identity], list[Identity]]:
    """Per speaker, the last `fraction` of utterances (at least one, if it has two) for validation."""
    fit, val = [], []
    for ident in identities:
        k = max(1, round(len(ident.voices) * fraction)) if len(ident.voices) > 1 else 0
        fit.append(replace(ident, voices=ident.voices[: len(ident.voices) - k]))
        val.append(replace(ident, voices=ident.voices[len(ident.voices) - k :]))
    return fit, val
