"""The synthetic paired-data builder behind the default checkpoint."""

from __future__ import annotations

import csv
import time

from PIL import Image

from voice2face.data import load_identities, split_identities
from voice2face.synthetic_data import Speaker, augment, build, espeak_variants

import numpy as np


def test_builder_writes_a_valid_layout_in_under_a_minute(tmp_path):
    start = time.perf_counter()
    root = build(tmp_path / "demo", n_speakers=8, utterances=2, views=3, seed=1, test_variants=1)
    elapsed = time.perf_counter() - start
    assert elapsed < 60
    identities = load_identities(root)
    assert len(identities) == 8
    assert all(len(i.voices) == 2 and len(i.faces) == 3 for i in identities)
    assert {i.gender for i in identities} == {"m", "f"}
    assert all(Image.open(i.faces[0]).size == (64, 64) for i in identities)
    with open(root / "meta.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"identity", "gender", "age_band", "espeak_voice", "face_age", "augmentations"} <= set(rows[0])
    train, test = split_identities(identities, str(root / "test_identities.txt"))
    assert test and train and not {i.name for i in train} & {i.name for i in test}
    held_out = {r["variant"] for r in rows if r["identity"] in {i.name for i in test}}
    assert not held_out & {r["variant"] for r in rows if r["identity"] in {i.name for i in train}}


def test_espeak_variants_have_both_genders():
    variants = espeak_variants()
    assert sum(g == "m" for g in variants.values()) > 20 and sum(g == "f" for g in variants.values()) > 10


def test_age_band_rule():
    assert Speaker("a", "en+m1", "m1", "m", 20, 130).age_band == "older"
    assert Speaker("b", "en+f1", "f1", "f", 80, 180).age_band == "young"
    assert Speaker("c", "en+f1", "f1", "f", 60, 160).age_band == "adult"


def test_augmentations_keep_length_and_level():
    rng = np.random.default_rng(0)
    wave = np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220).astype(np.float32) * 0.5
    kinds = set()
    for _ in range(24):
        out, kind = augment(wave, rng)
        kinds.add(kind)
        assert len(out) == len(wave) and np.isclose(np.abs(out).max(), 0.9)
    assert kinds == {"clean", "noise", "reverb", "telephone"}
