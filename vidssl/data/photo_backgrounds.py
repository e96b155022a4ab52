"""Photograph backgrounds for the built-in benchmark dataset (:mod:`vidssl.data.synthetic`).

Eight photographs, one per scene (:data:`PHOTO_SCENES`), stored in ``vidssl/data/photos/``
as 192 px (short side) PNG copies of scikit-image's sample images (``skimage.data``;
public domain or CC0 as scikit-image documents them; see ``photos/README.txt``). PNG, so
every installation decodes the same pixels and renders stay byte-reproducible.

A video of scene ``s`` shows a random window of photograph ``s``: a square crop whose
side is a uniform fraction of the photo's short side, at a uniform position, flipped
left-right with probability 1/2, resized to the frame (plus the camera margin), with a
per-video gain per colour channel and a brightness/contrast change. So two videos of
one scene rarely share a pixel while the scene stays recognisable from one frame: the
statistics of natural images (edges at every scale, 1/f spectrum, textures) instead of
the procedural patterns of the small dataset.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from vidssl.errors import SyntheticError

PHOTO_DIR = Path(__file__).with_name("photos")

PHOTO_SCENES: tuple[str, ...] = ("astronaut", "brick", "chelsea", "coffee", "grass", "gravel", "hubble", "rocket")

PHOTO_DESCRIPTIONS = {
    "astronaut": "photograph: an astronaut portrait with a flag (NASA)",
    "brick": "photograph: a brick wall (grey levels)",
    "chelsea": "photograph: a cat",
    "coffee": "photograph: a cup of coffee on a table",
    "grass": "photograph: grass (grey levels)",
    "gravel": "photograph: gravel (grey levels)",
    "hubble": "photograph: the Hubble deep field",
    "rocket": "photograph: a rocket on its launch pad",
}

_CROP = (0.4, 0.9)  # crop side as a fraction of the photo's short side
_GAIN = (0.85, 1.15)  # per-channel colour gain
_CONTRAST = (0.75, 1.25)
_BRIGHTNESS = (-0.08, 0.08)


@functools.lru_cache(maxsize=None)
def load_photo(scene: str) -> np.ndarray:
    """float32 [H, W, 3] RGB in [0, 1] of one scene's photograph (read once per process)."""
    import cv2

    path = PHOTO_DIR / f"{scene}.png"
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SyntheticError(f"photo background {scene!r}: cannot read {path} (is the package installed whole?)")
    return np.ascontiguousarray(img[..., ::-1], dtype=np.float32) / 255.0


def photo_background(rng: np.random.Generator, scene: str, size: int, margin: int = 0) -> np.ndarray:
    """float32 [size + 2 margin, size + 2 margin, 3] in [0, 1]: a random window of the
    scene's photograph (see the module docstring); the still-camera frame is the centre
    ``[margin:margin + size]``."""
    import cv2

    if scene not in PHOTO_SCENES:
        raise SyntheticError(f"unknown photo scene {scene!r} (allowed: {', '.join(PHOTO_SCENES)})")
    photo = load_photo(scene)
    h, w = photo.shape[:2]
    side = max(8, int(round(min(h, w) * rng.uniform(*_CROP))))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = photo[y0:y0 + side, x0:x0 + side]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    out = size + 2 * margin
    interp = cv2.INTER_AREA if side > out else cv2.INTER_LINEAR
    img = cv2.resize(np.ascontiguousarray(crop), (out, out), interpolation=interp)
    gain = rng.uniform(*_GAIN, 3).astype(np.float32)
    contrast, brightness = rng.uniform(*_CONTRAST), rng.uniform(*_BRIGHTNESS)
    mean = img.mean()
    img = (img * gain - mean) * contrast + mean + brightness
    return np.clip(img, 0, 1).astype(np.float32)
