"""Turning generator output into pictures people look at."""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_pil(faces: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [-1, 1] -> B RGB images."""
    pixels = ((faces.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(p.permute(1, 2, 0).numpy()) for p in pixels]


#: Faces on the page (and in the live view) are this many pixels wide.
DISPLAY_SIZE = 256


def resize(image: Image.Image, size: int) -> Image.Image:
    """A face at `size` px: shrunk with Lanczos (sharp, no aliasing), or enlarged with bicubic
    (smooth, without inventing detail)."""
    if image.width == size:
        return image
    method = Image.Resampling.LANCZOS if image.width > size else Image.Resampling.BICUBIC
    return image.resize((size, size), method)


def face_strip(images: Sequence[Image.Image], captions: Sequence[str], size: int = 160) -> Image.Image:
    """The faces side by side, each resized to `size` px with its caption underneath."""
    font = ImageFont.load_default(size=max(10, size // 12))
    lines = [textwrap.wrap(c, width=max(8, size // (font.size // 2 + 1))) or [""] for c in captions]
    line_height = font.size + 4
    caption_height = line_height * max(len(ls) for ls in lines) + 8
    gap = 8
    strip = Image.new("RGB", (len(images) * (size + gap) + gap, size + caption_height + 2 * gap), "white")
    draw = ImageDraw.Draw(strip)
    for i, (image, caption_lines) in enumerate(zip(images, lines)):
        x = gap + i * (size + gap)
        strip.paste(resize(image, size), (x, gap))
        for j, line in enumerate(caption_lines):
            width = draw.textlength(line, font=font)
            draw.text((x + (size - width) / 2, gap + size + 4 + j * line_height), line, fill="black", font=font)
    return strip


def image_grid(images: Sequence[Image.Image], columns: int) -> Image.Image:
    """Images of one size in a grid, row by row (for training sample sheets)."""
    w, h = images[0].size
    rows = -(-len(images) // columns)
    grid = np.full((rows * h, columns * w, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = np.asarray(image.convert("RGB"))
    return Image.fromarray(grid)
