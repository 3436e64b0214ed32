"""The page's two charts, drawn with Pillow: how the face settles as the speech grows (`settle_image`), and
the speech with where each length ends (`spectrogram_image`), on one time axis that is linear to 1 s and
logarithmic after it."""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from ..lengths import round_seconds
from ..pipeline import FacesResult

#: matplotlib's magma colour table, 256 RGB rows, for the spectrogram.
_MAGMA = (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def display_levels(features: np.ndarray, log_compressed: bool, range_db: float = 80.0) -> np.ndarray:
    """What to draw: log-mels as they are; linear mel energies (the GE2E front end) in dB.

    Drawn linearly, mel energies are a black picture with a few bright specks.
    """
    if log_compressed:
        return features
    db = 10 * np.log10(np.maximum(features, 1e-10))
    return np.maximum(db, db.max() - range_db)


#: Chart text height in the picture, and the width the charts are drawn at. The page shows a chart
#: about 326 CSS px wide on a 390-px phone: 18 px of text there reads at 12 px (tests/web/test_app.py checks).
CHART_TEXT_PX, CHART_WIDTH = 18, 480


def chart_fonts() -> tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont]:
    """(labels, emphasis): Pillow's bundled font, so the charts look the same on every machine."""
    return ImageFont.load_default(size=CHART_TEXT_PX), ImageFont.load_default(size=CHART_TEXT_PX + 2)


def settle_image(settle: dict[str, list[float]], width_px: int = CHART_WIDTH, height_px: int = 300) -> Image.Image:
    """How close each length's reading of the voice comes to the whole clip's, on a y-range fitted to
    the curve (cosines of 0.86 to 1.0 are a flat line on -1..1). Drawn with Pillow on the server: the
    page's plot widget took half a second to draw its first chart, matplotlib 60 ms."""
    seconds, similarity = settle["seconds of speech"], settle["similarity to whole clip"]
    low = max(-1.0, math.floor((min(min(similarity), 0.9) - 0.05) * 20) / 20)
    small, title = chart_fonts()
    left, right, top, bottom = 60, 20, 2 * CHART_TEXT_PX + 16, 2 * CHART_TEXT_PX + 20
    plot_w, plot_h = width_px - left - right, height_px - top - bottom
    end = float(_log_seconds(np.array(max(seconds)))) or 1.0
    x_of = lambda s: left + float(_log_seconds(np.array(s))) / end * plot_w  # noqa: E731
    y_of = lambda v: top + (1.0 - v) / (1.0 - low) * plot_h  # noqa: E731
    canvas = Image.new("RGB", (width_px, height_px), "white")
    draw = ImageDraw.Draw(canvas)
    for v in np.arange(low, 1.0001, 0.05 if 1 - low <= 0.3 else 0.1):
        y = y_of(v)
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((left - 6, y), f"{v:.2f}", fill="black", font=small, anchor="rm")
    wanted = [max(seconds), *(s for s in seconds if s != max(seconds))]  # the whole clip's length always labelled
    for _, (_, x, anchor, text) in axis_labels(draw, wanted, x_of, top + plot_h + 6, small, width_px - 2):
        draw.text((x, top + plot_h + 6), text, fill="black", font=small, anchor=anchor)
    points = [(x_of(s), y_of(v)) for s, v in zip(seconds, similarity, strict=True)]
    draw.line(points, fill=(79, 70, 229), width=3)
    for x, y in points:
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=(79, 70, 229))
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    draw.text((6, 4), "closeness to the whole clip (1 = the same)", fill="black", font=small, anchor="la")
    draw.text((left + plot_w / 2, height_px - 4), "seconds of speech used", fill="black", font=small, anchor="md")
    return canvas


def axis_labels(
    draw: ImageDraw.ImageDraw, seconds: list[float], x_of, y: float, font: ImageFont.FreeTypeFont, right_edge: float
) -> list[tuple[tuple[float, float, float, float], tuple[float, float, str, str]]]:
    """(box, (seconds, x, anchor, text)) for the labels of a time axis, in the order given (most wanted first): each
    centred under its point, or ending at `right_edge` where it would pass it ("299.9" at the plot's end was
    cut off); a label that would come within 4 px of one already placed is left out."""
    placed: list[tuple[tuple[float, float, float, float], tuple[float, float, str, str]]] = []
    for s in seconds:
        x, anchor, text = x_of(s), "ma", f"{round_seconds(s):g}"
        box = draw.textbbox((x, y), text, font=font, anchor=anchor)
        if box[2] > right_edge:
            x, anchor = right_edge, "ra"
            box = draw.textbbox((x, y), text, font=font, anchor=anchor)
        if not any(_overlap(box, other, 4) for other, _ in placed):
            placed.append((box, (s, x, anchor, text)))
    return placed


def _overlap(a: tuple[float, ...], b: tuple[float, ...], margin: float = 0) -> bool:
    """Whether boxes (left, top, right, bottom) come within `margin` px of each other."""
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


def _log_seconds(seconds: np.ndarray) -> np.ndarray:
    """Seconds on the axis both pictures share: linear to 1 s, logarithmic after, so the 1, 2, 4, 8 s
    cuts are evenly spaced and still apart on a 300 s clip."""
    return np.where(seconds <= 1, seconds, 1 + np.log2(np.maximum(seconds, 1)))


def spectrogram_image(
    result: FacesResult, hop_s: float, log_compressed: bool = True, width_px: int = CHART_WIDTH, height_px: int = 300
) -> Image.Image:
    """The speech's spectrogram (low pitches at the bottom) with a line where each length ends, on the
    pictures' shared time axis (see `_log_seconds`); see `cut_labels` for where their labels go.

    Drawn with Pillow (a colour table and a few lines), about 10x faster than a matplotlib figure.
    """
    features = display_levels(result.utterance.features.numpy(), log_compressed)
    total = features.shape[1] * hop_s
    small, bold = chart_fonts()
    left, right, top, bottom = round(small.getlength("pitch")) + 12, 8, 6, 2 * CHART_TEXT_PX + 20
    plot_w, plot_h = width_px - left - right, height_px - top - bottom
    end = float(_log_seconds(np.array(total)))
    axis = np.linspace(0, end, plot_w)  # one column per pixel: the frame under each point of the warped axis
    columns = np.minimum((np.where(axis <= 1, axis, 2 ** (axis - 1)) / hop_s).astype(int), features.shape[1] - 1)
    shown = features[::-1, columns]  # low bands at the bottom
    low, high = np.percentile(shown, 1), np.percentile(shown, 99.5)
    levels = np.clip((shown - low) / max(high - low, 1e-6) * 255, 0, 255).astype(np.uint8)
    picture = Image.fromarray(_MAGMA[levels]).resize((plot_w, plot_h), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (width_px, height_px), "white")
    canvas.paste(picture, (left, top))
    draw = ImageDraw.Draw(canvas)
    x_of = lambda seconds: left + float(_log_seconds(np.array(seconds))) / end * (plot_w - 1)  # noqa: E731
    ticks = [t for t in (0, 0.5, 1, 2, 4, 8, 16, 30, 60, 120, 300) if t <= total]
    for _, (t, x, anchor, text) in axis_labels(draw, ticks, x_of, top + plot_h + 6, small, width_px - 2):
        draw.line([(x_of(t), top + plot_h), (x_of(t), top + plot_h + 4)], fill="black")
        draw.text((x, top + plot_h + 6), text, fill="black", font=small, anchor=anchor)
    draw.text((left + plot_w / 2, height_px - 4), "seconds of speech (silence cut out)", fill="black", font=small, anchor="md")
    draw.text((left - 6, top), "high", fill="black", font=small, anchor="ra")
    draw.text((left - 6, top + plot_h), "low", fill="black", font=small, anchor="rd")
    draw.text((left - 6, top + plot_h / 2), "pitch", fill="black", font=small, anchor="rm")
    for cut in result.cuts:
        x = x_of(cut.seconds)
        draw.line([(x, top), (x, top + plot_h)], fill=(0, 255, 255), width=2)
    for _, (x, y, anchor, label) in cut_labels(draw, result.cuts, x_of, (left, top, left + plot_w, top + plot_h), bold):
        draw.text((x, y), label, fill=(0, 255, 255), font=bold, anchor=anchor, stroke_width=2, stroke_fill="black")
    draw.rectangle([left - 1, top - 1, left + plot_w, top + plot_h], outline="black")
    return canvas


def cut_labels(
    draw: ImageDraw.ImageDraw, cuts: list, x_of, plot: tuple[float, float, float, float], font: ImageFont.FreeTypeFont
) -> list[tuple[tuple[float, float, float, float], tuple[float, float, str, str]]]:
    """(box, (x, y, anchor, text)) for each length's label beside its line, none overlapping another: each
    goes right of its line (left of it where it would leave the plot), on the lowest row that is
    free, rows stacking up from the plot's bottom."""
    placed: list[tuple[tuple[float, float, float, float], tuple[float, float, str, str]]] = []
    row_height = font.size + 8
    for cut in cuts:
        label = "whole" if cut.requested is None else f"{cut.requested:g} s"
        x = x_of(cut.seconds)
        width = draw.textlength(label, font=font) + 4
        anchor, x_text = ("ld", x + 4) if x + 4 + width <= plot[2] else ("rd", x - 4)
        for row in range(int((plot[3] - plot[1]) // row_height)):
            y = plot[3] - 4 - row * row_height
            box = draw.textbbox((x_text, y), label, font=font, anchor=anchor, stroke_width=2)
            if not any(_overlap(box, other) for other, _ in placed):
                placed.append((box, (x_text, y, anchor, label)))
                break
    return placed
