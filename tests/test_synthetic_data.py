"""The synthetic data builder: espeak-ng voices (and, for the paper-GAN demo set, DCGAN faces)."""

from __future__ import annotations

import csv
import shutil
import time

import numpy as np
import pytest

from voice2face.datasets.paired import load_identities, split_identities
from voice2face.datasets.synthetic import FaceIdentity, Speaker, augment, build, espeak_variants, pair


def test_builder_writes_a_valid_voice_layout_in_under_a_minute(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: apt-get install espeak-ng (.ci/run does)")
    start = time.perf_counter()
    root = build(tmp_path / "voices", n_speakers=8, utterances=2, views=3, seed=1, test_variants=1)
    elapsed = time.perf_counter() - start
    assert elapsed < 60
    identities = load_identities(root, need_faces=False)
    assert len(identities) == 8
    assert all(len(i.voices) == 2 and not i.faces for i in identities)
    assert {i.gender for i in identities} == {"m", "f"}
    with open(root / "meta.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"identity", "gender", "age_band", "espeak_voice", "augmentations"} <= set(rows[0])
    train, test = split_identities(identities, str(root / "test_identities.txt"))
    assert test and train and not {i.name for i in train} & {i.name for i in test}
    held_out = {r["variant"] for r in rows if r["identity"] in {i.name for i in test}}
    assert not held_out & {r["variant"] for r in rows if r["identity"] in {i.name for i in train}}


def test_each_speaker_gets_its_own_face_of_its_gender_and_band_where_one_is_left():
    people = [Speaker(f"s{k}", "en+x", "x", g, p, s) for k, (g, p, s) in enumerate([("m", 20, 130), ("m", 40, 160), ("f", 80, 180)])]
    faces = [FaceIdentity("m", 35, []), FaceIdentity("m", 60, []), FaceIdentity("f", 22, []), FaceIdentity("f", 50, [])]
    pairs = pair(people, faces)
    assert [f.gender for _, f in pairs] == ["m", "m", "f"]
    assert pairs[0][1].age == 60 and pairs[1][1].age == 35 and pairs[2][1].age == 22  # older, adult, young


def test_espeak_variants_have_both_genders():
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: apt-get install espeak-ng (.ci/run does)")
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
