"""One evaluation run: every protocol that the given data allows, written to one folder.

    results.json   every figure with its interval, the chance levels, what the model learned from
    sweep_*.png    each figure against the length of speech used
    faces_*.png    held-out speakers' faces: a row per speaker, a column per clip (whole clip);
                   speakers with one clip each side by side in one row
    people_*.png   8 held-out speakers of one gender and one age band side by side (whole clip):
                   should be 8 people, not one person 8 times
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..datasets.paired import Identity
from ..images import image_grid
from ..pipeline import Voice2Face
from .judged import JudgedSpeaker, judge_speakers, network_faces_reference, random_people_reference, real_photo_reference
from .judges import FaceDescriptor, mean_pairwise_distance
from .paired import FaceGrader, evaluate
from .report import format_table, sweep_plot

#: The figures the paper reports for its own model (Wen et al. 2019, unseen VoxCeleb speakers).
PAPER = {"matching_1to2": 0.7607, "matching_1to2_same_gender": 0.5969, "gender_agreement": 0.965}


def evaluate_checkpoint(
    model: Voice2Face,
    out: Path,
    judged_sets: dict[str, Sequence[JudgedSpeaker]],
    durations: Sequence[float | None],
    paired: tuple[FaceGrader, Sequence[Identity]] | None = None,
    photos: Path | None = None,
    clips_per_speaker: int | None = None,
    trials: int = 2000,
    seed: int = 0,
    face_space: Path | None = None,
) -> dict:
    """Run the judged protocol on each named set of held-out speakers, and the paired one where a grader
    and held-out identities with faces are given; beside them, random people of the model's face space and,
    given the `face_space` checkpoint it was fitted in, the face network's own faces. Print tables and write
    the folder."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"checkpoint": str(model.path), "trained_on": model.info.trained_on, "paper": PAPER}
    if photos:
        ref = results["real_photos"] = real_photo_reference(photos, seed=seed)
        print(f"real photos (64x64, {ref['photos']}): diversity {ref['diversity']:.3f}, face found {ref['face_found']['value']:.3f}, "
              f"gender read right {ref['gender_agreement']['value']:.3f}")  # fmt: skip
    if face_space:
        own = results["network_faces"] = network_faces_reference(model, face_space, seed=seed)
        print(f"the face network's own faces ({own['faces']}, truncation {own['truncation']}): diversity {own['diversity']:.3f}, "
              f"skin tone (ITA) spread {own['ita_spread']:.1f} degrees, {own['ita_under_10']:.0%} under 10")  # fmt: skip
    people = random_people_reference(model, seed=seed)
    if people:
        results["random_people"] = people
        print(f"random people of the face space ({people['people']}): diversity {people['diversity']:.3f}, "
              f"skin tone (ITA) spread {people['ita_spread']:.1f} degrees, {people['ita_under_10']:.0%} under 10")  # fmt: skip
    for name, speakers in judged_sets.items():
        report, faces_by_duration, owners = judge_speakers(model, speakers, durations, clips_per_speaker, seed)
        faces = faces_by_duration[None]
        face_sheet(faces, owners, len(speakers)).save(out / f"faces_{name}.png")
        sheet = people_of_one_kind(faces, owners, speakers)
        if sheet:
            image, report["people_of_one_kind"] = sheet
            image.save(out / f"people_{name}.png")
        sweep_plot(report, out / f"sweep_{name}.png")
        results[f"judged_{name}"] = report
        print(f"\n== judged, {name} speakers ==\n{format_table(report)}\nskin tone (ITA) by length: {report['skin_tone']}"
              + (f"\nskin-tone slider: {report['skin_control']}" if "skin_control" in report else "")
              + (f"\nskin tone against language: {report['skin_by_language']}" if "skin_by_language" in report else ""))  # fmt: skip
    if paired:
        grader, identities = paired
        report = evaluate(model, grader, identities, durations, trials=trials, seed=seed)
        sweep_plot(report, out / "sweep_paired.png")
        results["paired"] = report
        print(f"\n== paired (grader {grader.path}) ==\n{format_table(report)}")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out / 'results.json'} and the plots and face sheets beside it")
    return results


def face_sheet(faces: Sequence[Image.Image], owners: Sequence[int], n_speakers: int) -> Image.Image:
    """A row per speaker (the first 8), a column per clip (the first 6; a short row repeats its first face).
    Speakers with one clip each (talking pairs) are all shown, side by side in one row."""
    rows = [r for r in ([f for f, o in zip(faces, owners) if o == k][:6] for k in range(n_speakers)) if r]
    width = max(len(r) for r in rows)
    if width == 1:
        return image_grid([r[0] for r in rows], columns=len(rows))
    return image_grid([f for r in rows[:8] for f in r + [r[0].copy()] * (width - len(r))], columns=width)


#: Speakers side by side in `people_of_one_kind`.
PEOPLE_SHOWN = 8


def people_of_one_kind(faces: Sequence[Image.Image], owners: Sequence[int], speakers: Sequence[JudgedSpeaker]) -> tuple[Image.Image, dict] | None:
    """The whole-clip faces of the first PEOPLE_SHOWN speakers of the gender and age band with the most speakers
    (their first clip each), side by side, with their mean dlib distance; None without PEOPLE_SHOWN such speakers."""
    first = {}
    for face, k in zip(faces, owners, strict=True):
        first.setdefault(int(k), face)
    kinds: dict[tuple[str, tuple[int, int]], list[int]] = {}
    for k in first:
        if speakers[k].age_band is not None and speakers[k].gender in ("m", "f"):
            kinds.setdefault((speakers[k].gender, speakers[k].age_band), []).append(k)
    if not kinds or max(len(v) for v in kinds.values()) < PEOPLE_SHOWN:
        return None
    (gender, band), ids = max(kinds.items(), key=lambda item: len(item[1]))
    shown = [first[k] for k in ids[:PEOPLE_SHOWN]]
    distances = mean_pairwise_distance(FaceDescriptor().describe(shown), list(range(PEOPLE_SHOWN)), same=False)
    return image_grid(shown, columns=PEOPLE_SHOWN), {
        "gender": gender, "age_band": list(band), "speakers": [speakers[k].name for k in ids[:PEOPLE_SHOWN]],
        "diversity": float(np.mean(distances)), "pairs_under_0.6": int((distances < 0.6).sum()),
    }  # fmt: skip
