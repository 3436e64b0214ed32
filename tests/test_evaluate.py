"""Evaluation: the metric code on embeddings with known answers, then the whole command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from voice2face.datasets.paired import load_identities, split_identities
from voice2face.errors import Voice2FaceError
from voice2face.evaluate import FaceGrader, evaluate
from voice2face.evaluate.paired import identity_means, matching_hits, recall_at_k, sample_trials
from voice2face.evaluate.run import face_sheet
from voice2face.evaluate.stats import wilson_interval
from voice2face.pipeline import Voice2Face

from .conftest import run_main


def unit(n: int, d: int = 32, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


@pytest.fixture
def hand_built():
    """40 identities x 5 real faces, tightly clustered; genders alternate."""
    centres = unit(40, seed=1)
    face_ids = np.repeat(np.arange(40), 5)
    faces = F.normalize(centres[face_ids] + 0.05 * unit(200, seed=2), dim=1)
    genders = {i: "mf"[i % 2] for i in range(40)}
    return centres, faces, face_ids, genders


def test_identical_faces_match_every_time(hand_built):
    centres, faces, face_ids, genders = hand_built
    generated_ids = np.arange(40)
    generated = centres  # the generator drew each speaker's own face
    rng = np.random.default_rng(0)
    for same_gender in (False, True):
        trials = sample_trials(generated_ids, face_ids, genders, 1000, same_gender, rng)
        assert len(trials.generated) == 1000
        assert matching_hits(generated, faces, trials).mean() == 1.0
    means, mean_ids = identity_means(faces, face_ids)
    recalls = recall_at_k(generated, generated_ids, means, mean_ids, (1, 5))
    assert recalls[1].mean() == 1.0 and recalls[5].mean() == 1.0


def test_shuffled_faces_match_about_half_the_time(hand_built):
    centres, faces, face_ids, genders = hand_built
    generated_ids = np.arange(40)
    generated = centres[np.random.default_rng(3).permutation(40)]  # faces of the wrong people
    trials = sample_trials(generated_ids, face_ids, genders, 4000, False, np.random.default_rng(0))
    assert matching_hits(generated, faces, trials).mean() == pytest.approx(0.5, abs=0.05)
    means, mean_ids = identity_means(faces, face_ids)
    assert recall_at_k(generated, generated_ids, means, mean_ids, (1,))[1].mean() < 0.15


def test_same_gender_imposters_share_the_speakers_gender(hand_built):
    _, _, face_ids, genders = hand_built
    trials = sample_trials(np.arange(40), face_ids, genders, 500, True, np.random.default_rng(0))
    speakers, imposters = trials.generated, face_ids[trials.imposter_face]
    assert all(genders[int(s)] == genders[int(i)] and s != i for s, i in zip(speakers, imposters))


def test_trials_are_seeded(hand_built):
    _, _, face_ids, genders = hand_built
    a = sample_trials(np.arange(40), face_ids, genders, 50, False, np.random.default_rng(7))
    b = sample_trials(np.arange(40), face_ids, genders, 50, False, np.random.default_rng(7))
    assert np.array_equal(a.imposter_face, b.imposter_face) and np.array_equal(a.true_face, b.true_face)


def test_wilson_interval():
    lo, hi = wilson_interval(76, 100)
    assert lo < 0.76 < hi and hi - lo == pytest.approx(0.166, abs=0.01)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 10)[0] == 0.0
    for n in range(1, 200):  # the interval holds the rate itself, rounding included
        assert wilson_interval(n, n)[1] >= 1.0 and wilson_interval(0, n)[0] <= 0.0


def test_evaluate_on_held_out_identities(gan_run, grader_run, tiny_dataset):
    _, test = split_identities(load_identities(tiny_dataset), "paper")
    report = evaluate(Voice2Face.from_pretrained(gan_run), FaceGrader(grader_run), test, (1, None), trials=100)
    assert report["identities"] == 4 and set(report["durations"]) == {"1s", "whole"}
    for metrics in report["durations"].values():
        for name, r in metrics.items():
            low = -1 if name in ("cosine_to_true_identity", "consistency_with_whole_clip") else 0
            assert low <= r["value"] <= 1, name
            assert r["ci95"][0] <= r["value"] <= r["ci95"][1]
    assert report["durations"]["whole"]["consistency_with_whole_clip"]["value"] == pytest.approx(1.0, abs=1e-5)
    # two women and two men, three clips each: the per-gender rates split the overall one
    whole = report["durations"]["whole"]
    male, female = whole["gender_agreement_male_voices"], whole["gender_agreement_female_voices"]
    assert male["n"] == female["n"] == 6 and whole["gender_agreement"]["n"] == 12
    assert whole["gender_agreement"]["value"] == pytest.approx((male["value"] + female["value"]) / 2)
    assert report["chance"]["gender_agreement"] == 0.5


def test_the_gans_own_checkpoint_is_refused_as_grader(gan_run):
    with pytest.raises(Voice2FaceError, match="is a .voice-to-face. checkpoint; this needs .grader."):
        FaceGrader(gan_run)


def test_evaluate_command_writes_both_protocols(gan_run, grader_run, tiny_dataset, tmp_path, capsys):
    proc = run_main(capsys, "evaluate", "--checkpoint", str(gan_run), "--grader", str(grader_run), "--data", str(tiny_dataset),
                    "--trials", "50", "--durations", "1", "full", "--out", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "matching_1to2_same_gender" in proc.stdout and "diversity" in proc.stdout
    report = json.loads((tmp_path / "results.json").read_text())
    assert list(report["paired"]["durations"]) == ["1s", "whole"]
    judged = report["judged_synthetic"]
    assert judged["speakers"] == ["Alice", "Bruno", "Chloe", "Dmitri"] and judged["clips"] == 12
    whole = judged["durations"]["whole"]
    assert 0 <= whole["face_found"]["value"] <= 1 and whole["diversity"]["value"] > 0
    assert whole["diversity"]["ci95"][0] <= whole["diversity"]["value"] <= whole["diversity"]["ci95"][1]
    for name in ("same_gender_speaker_auc_face", "same_gender_speaker_auc_voice"):  # three clips a speaker: both reported
        assert 0 <= whole[name]["value"] <= 1 and whole[name]["n"] == 4
    assert report["checkpoint"] == str(gan_run) and report["paper"]["matching_1to2"] == 0.7607
    assert (tmp_path / "sweep_paired.png").stat().st_size > 1000
    assert Image.open(tmp_path / "faces_synthetic.png").size == (3 * 64, 4 * 64)  # a row per speaker, a column per clip


def test_evaluate_without_held_out_speakers_says_so(gan_run, tmp_path, capsys):
    proc = run_main(capsys, "evaluate", "--checkpoint", str(gan_run), "--out", str(tmp_path))
    assert proc.returncode == 2 and "held-out speakers" in proc.stderr and "Traceback" not in proc.stderr


def test_bootstrap_over_speakers_and_correlation_intervals():
    from voice2face.evaluate.stats import bootstrap, correlation

    per_speaker = np.array([0.2, 0.4, 0.6, 0.8])
    result = bootstrap(lambda units: float(per_speaker[units].mean()), 4, seed=0)
    assert result["value"] == pytest.approx(0.5) and result["n"] == 4
    assert 0.2 <= result["ci95"][0] < 0.5 < result["ci95"][1] <= 0.8
    r = correlation([1, 2, 3, 4, 5, 6], [2, 4, 5, 8, 10, 12])
    assert r["value"] > 0.95 and r["ci95"][0] < r["value"] < r["ci95"][1] <= 1
    assert np.isnan(correlation([1, 2, 3], [1, 2, 3])["value"])  # too few to say


def test_pair_distances_resample_speakers_not_faces():
    from scipy.spatial.distance import cdist

    from voice2face.evaluate.judged import speaker_pair_mean

    # speakers 0 and 1: two faces each, 1 apart within a speaker, 10 apart between speakers
    descriptors = np.array([[0.0], [1.0], [10.0], [11.0]])
    distances, owner = cdist(descriptors, descriptors), np.array([0, 0, 1, 1])
    assert speaker_pair_mean(distances, owner, np.array([0, 1]), same=True) == pytest.approx(1.0)
    assert speaker_pair_mean(distances, owner, np.array([0, 1]), same=False) == pytest.approx(10.0)
    assert np.isnan(speaker_pair_mean(distances, owner, np.array([0, 0]), same=False))  # one speaker drawn twice: no pair
    # ... but its two copies count as two speakers' clips for consistency: 1 apart within each copy
    assert speaker_pair_mean(distances, owner, np.array([0, 0]), same=True) == pytest.approx(1.0)


def test_same_gender_speaker_auc_compares_one_speakers_clips_with_two_speakers_of_one_gender():
    from scipy.spatial.distance import cdist

    from voice2face.evaluate.judged import same_gender_speaker_auc

    owner, gender = np.repeat([0, 1, 2], 2), np.repeat(["m", "m", "f"], 2)
    everyone = np.arange(3)
    # the two men sit far apart, each speaker's clips 1 apart: distance always tells the men apart
    apart = cdist(*[np.array([[0.0], [1.0], [10.0], [11.0], [0.5], [1.5]])] * 2)
    assert same_gender_speaker_auc(apart, owner, gender, everyone) == 1.0
    # the two men's clips interleave (0, 2 and 1, 3): a man's own clips are never the closer pair
    mixed = cdist(*[np.array([[0.0], [2.0], [1.0], [3.0], [0.5], [1.5]])] * 2)
    assert same_gender_speaker_auc(mixed, owner, gender, everyone) < 0.5
    # the woman near the first man does not count: she is of the other gender
    assert np.isnan(same_gender_speaker_auc(apart, owner, gender, np.array([0, 2])))
    assert np.isnan(same_gender_speaker_auc(apart, owner, gender, np.array([1, 1])))  # one man drawn twice: no pair of two men


def test_face_sheet_rows_are_speakers_and_one_clip_speakers_share_a_row():
    shade = lambda v: Image.new("RGB", (4, 4), (v, v, v))  # noqa: E731
    # speaker 0 has two faces, speaker 1 one (its row repeats it), speaker 2 none (no row)
    sheet = np.asarray(face_sheet([shade(10), shade(20), shade(30)], [0, 0, 1], 3))
    assert sheet.shape == (8, 8, 3)
    assert [sheet[r, c, 0] for r, c in ((0, 0), (0, 4), (4, 0), (4, 4))] == [10, 20, 30, 30]
    # nine speakers of one clip each (the talking pairs): all nine, side by side
    sheet = np.asarray(face_sheet([shade(v) for v in range(9)], list(range(9)), 9))
    assert sheet.shape == (4, 36, 3) and [sheet[0, 4 * k, 0] for k in range(9)] == list(range(9))


def test_per_gender_figures_keep_to_speakers_of_one_gender():
    from scipy.spatial.distance import cdist

    from voice2face.evaluate.judged import JudgedSpeaker, per_gender_figures

    speakers = [JudgedSpeaker(name, gender, 30.0, ()) for name, gender in (("a", "m"), ("b", "m"), ("c", "f"), ("d", "f"))]
    owner = np.repeat([0, 1, 2, 3], 2)
    # the men's faces are 1 apart and the women's 3 apart; every man is 10 from every woman
    places = np.array([[0.0], [0.1], [1.0], [1.1], [10.0], [10.1], [13.0], [13.1]])
    figures = per_gender_figures(cdist(places, places), owner, speakers, seed=0)
    assert figures["diversity_men"]["value"] == pytest.approx(1.0, abs=0.1)
    assert figures["diversity_women"]["value"] == pytest.approx(3.0, abs=0.1)
    assert figures["same_gender_speaker_auc_face_men"]["value"] == 1.0  # each man's two clips lie closer than two men's


def test_skin_tone_figures_spread_median_and_dark_share():
    from voice2face.evaluate.judged import skin_tone_figures

    figures = skin_tone_figures(np.array([-20.0, 5.0, 30.0, 45.0, np.nan]))
    assert figures["faces_measured"] == 4 and figures["ita_under_10"] == 0.5
    assert figures["ita_median"] == 17.5 and figures["ita_spread"] == pytest.approx(np.std([-20, 5, 30, 45]))
    assert skin_tone_figures(np.array([np.nan])) == {"faces_measured": 0}


def test_skin_by_language_sees_skin_that_follows_language_and_not_skin_that_does_not():
    from voice2face.evaluate.judged import skin_by_language

    rng = np.random.default_rng(0)
    languages = np.repeat(["de", "ta", "zh", "rw"], 6).tolist() + ["cy"] * 2  # cy: too few speakers to count
    owner = np.repeat(np.arange(len(languages)), 2)  # two clips a speaker
    clip_languages = [languages[k] for k in owner]
    tone_of = {"de": 50.0, "ta": 20.0, "zh": 40.0, "rw": 0.0, "cy": 30.0}
    following = np.array([tone_of[g] for g in clip_languages]) + rng.normal(0, 5, len(owner))
    told = skin_by_language(following, owner, clip_languages)
    assert told["speakers"] == 24 and told["languages"] == 4 and told["eta_squared"] > 0.8 and told["p"] < 0.01
    assert told["ita_mean_by_language"]["de"] > told["ita_mean_by_language"]["rw"] + 30
    keyed = rng.normal(35, 15, len(languages))[owner]  # each speaker's own, whatever the language
    untold = skin_by_language(keyed, owner, clip_languages)
    assert untold["eta_squared"] < 0.5 and untold["p"] > 0.01
    with_nan = following.copy()
    with_nan[:2] = np.nan  # a speaker whose faces' skin could not be measured is left out
    assert skin_by_language(with_nan, owner, clip_languages)["speakers"] == 23
    assert skin_by_language(following, owner, ["de"] * len(owner)) == {"speakers": 26, "languages": 1}


def test_people_of_one_kind_shows_eight_speakers_of_the_commonest_gender_and_band():
    from voice2face.evaluate.judged import JudgedSpeaker
    from voice2face.evaluate.run import PEOPLE_SHOWN, people_of_one_kind

    speakers = [JudgedSpeaker(f"m{k}", "m", 35.0, (), age_band=(30, 39)) for k in range(9)]
    speakers += [JudgedSpeaker(f"f{k}", "f", 25.0, (), age_band=(20, 29)) for k in range(3)]
    rng = np.random.default_rng(0)
    faces = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in speakers for _ in range(2)]
    owners = [k for k in range(len(speakers)) for _ in range(2)]
    sheet, info = people_of_one_kind(faces, owners, speakers)
    assert info["gender"] == "m" and info["age_band"] == [30, 39] and info["speakers"] == [f"m{k}" for k in range(8)]
    assert sheet.size == (PEOPLE_SHOWN * 64, 64) and info["diversity"] > 0
    assert people_of_one_kind(faces[:14], owners[:14], speakers) is None  # 7 men: too few to show 8
