"""The built-in dataset: procedurally rendered videos whose class is defined by motion.

``vidssl data synth OUT`` calls :func:`make_synthetic`. Every video shows one
textured object moving over a textured background, plus 0-1 static distractor
objects drawn from the same distribution as the moving one. The **motion class**
(the ``label``) says only how the moving object moves; the **appearance factor**
(the ``appearance`` column, the "scene") says only what the background looks like.
The two are crossed in equal numbers and every other property is drawn
independently of both, so only a model that sees motion separates the classes
(the dense-trajectory paper's argument: instance-discrimination networks tend to
key on the background, IDT features on motion; see docs and DESIGN.md).

Motion classes (:data:`CLASSES`; rates at 25 fps and 64 px, all scaled with the
frame size and given per second so a different ``fps`` keeps the same motion;
each rate is multiplied by a per-video factor in [0.8, 1.25]):

==================== ===============================================================
``move_horizontal``  constant velocity left OR right (direction drawn per video),
                     1.5 px/frame, wrapping around the frame (a torus)
``move_up``          constant velocity upwards, 1.5 px/frame, wrapping
``move_down``        constant velocity downwards, 1.5 px/frame, wrapping
``oscillate_horizontal``  x = x0 + A sin(2 pi t / P + phi), A = 8 px, P = 26 frames
``oscillate_vertical``    the same along y
``orbit``            circle of radius 9 px, period 30 frames, either direction
``rotate``           spins in place at 8 deg/frame, either direction
``zoom``             pulses in size: scale = 1.4 ** sin(2 pi t / P + phi), P = 30 frames
==================== ===============================================================

Direction classes (:data:`DIRECTION_CLASSES`, opt-in, preset ``direction``): ``move_left``,
``move_right`` (the translation of ``move_horizontal`` with a fixed direction), ``move_up``
and ``move_down``; a horizontal flip swaps the first two, so they tell whether a pipeline
flips (``data.augment.flip``).

The default classes are invariant under a horizontal flip (the standard augmentation): a
flipped ``move_horizontal`` video is still ``move_horizontal`` and a flipped orbit or
spin only changes its (random) direction; ``move_up`` / ``move_down`` are not
mirrored by a horizontal flip. In 8 frames at stride 2 (the tiny recipes) an object
translates by ~21 px (a third of the frame), spins by ~130 deg, covers more than
half an oscillation or orbit period, or grows/shrinks by up to ~2x; the fastest
motions (oscillation, orbit) move ~2 px/frame, so stride 4 still samples an
oscillation period 6 times.

No single frame tells the class: start positions are uniform over the (wrapping)
frame, every object has a uniformly random orientation, and the objects of the
non-``zoom`` classes get a constant scale drawn from the same marginal as the zoom
pulse (``1.4 ** sin(u)``, u uniform), so the position, orientation and size of the
object in one frame have the same distribution in every class; the distractors
make it impossible to tell from one frame which object is the one that moves.

Appearance factors (:data:`SCENES`): a background pattern family with its own
palette, each with per-video random phase, orientation, scale, colours and an
illumination ramp, so every video looks different (instance discrimination has
something to discriminate) while the scene is very salient (the background covers
~90 % of the pixels): ``stripes_warm`` (oriented stripes, reds/oranges),
``checker_cool`` (rotated checkerboard, blues/cyans), ``blobs_green`` (smooth
random blobs, greens), ``dots_purple`` (rotated dot lattice, purples),
``rings_sand`` (concentric rings, sand/brown). The families differ in structure,
not only in colour, so the scene survives grayscale augmentation.

Nuisances drawn per video, independently of the class and the scene: object
shape (5 asymmetric polygons), its two colours (uniform hue) and the line
splitting them, its size (0.3 x frame size x [0.8, 1.2]), start position,
orientation, the speed factor, phases and directions, and 0-1 static distractor.

Camera motion (``camera`` > 0, off by default): the frame becomes a window onto a
larger background that pans at ``camera`` x [0.5, 1] px/frame in a direction turning
at a per-video rate of up to one turn per 64 frames, so the pan changes over the
video; the moving object and the distractors are part of the scene and pan with it
(:func:`camera_path`). The motion classes keep their meaning relative to the scene.
It adds what the still-camera dataset lacks and natural videos have: a nuisance that
is shared by two crops of one clip but differs between clips of one video, the
setting of the large-scale study's temporal-persistency argument (docs/results.md).
Every draw of the still-camera dataset is unchanged (the camera draws come last), so
frame 0 of a panning video is the still frame 0, except where a static distractor
crosses the frame edge (the still frame wraps it around; the larger scene does not).

Wandering distractor (``wander`` > 0, off by default): one more object, drawn from the
same distribution as the moving one, drifts under it at ``wander`` x [0.5, 1] px/frame in
a straight line that takes a new random speed and heading every 16 frames (25 fps;
the first change at a random time), wrapping around the frame (:func:`wander_path`).
Its course is shared by two crops of one 8 x 2-frame clip but not by clips of one video
seconds apart, and it is not any class's motion over a video: the other nuisance of
the temporal-persistency argument (an object or person passing by), without the
camera's side effect of exposing the whole (persistent) scene to frame differences.
The draws come after the camera's: ``wander`` = 0 leaves every other draw unchanged.

Photograph scenes (:data:`~vidssl.data.photo_backgrounds.PHOTO_SCENES`): ``scenes`` may
also name eight photographs shipped with the package (astronaut, brick, chelsea, coffee,
grass, gravel, hubble, rocket); a video of such a scene shows a random window of that
photograph (crop size, position, flip, colour gain and contrast drawn per video,
:func:`~vidssl.data.photo_backgrounds.photo_background`), so backgrounds have the
statistics of natural images (edges at every scale, a 1/f spectrum) instead of a pattern.

The benchmark preset (:data:`PRESETS`, ``vidssl data synth OUT --preset benchmark``,
``builtin-bench:`` manifests): 2,100 videos, 1,200 train / 300 val / 600 test, the eight
motion classes crossed with the eight photograph scenes. The validation split
(``val_fraction`` > 0, indices after the training videos) is where settings are chosen;
without it every draw of a dataset is what it was before the option existed.

Several objects (``objects`` > 1, off by default; preset ``detection``, ``builtin-detect:``
manifests): every video shows 2 to ``objects`` moving objects, each drawn like the single
one (shape, colours, size, start, speed, phases) with its own motion class, distinct within
a video and drawn at random (uniform over the classes), so a box's class can only be told
from the motion inside it (spatio-temporal action detection, AVA-style; large-scale study
Sec. 4.6, App. B.3). Object 0 is the usual moving object; the others are drawn after every
other draw and pasted over it in order. Each split gets a boxes CSV beside its manifest
(``train_boxes.csv`` ..., :mod:`vidssl.data.boxes`, AVA's layout: video id = the file stem,
timestamp, x1, y1, x2, y2 normalised to [0, 1], class name, object index as the person id)
with a box per object at every keyframe, one per second (AVA's 1 Hz) from t = 1 s:
the bounding box of the pixels that the object covers with an alpha above 1 %
(:func:`object_boxes`). An object that wraps around a frame edge at a keyframe (it is
partly on both sides) gets no box there. The manifests hold each video's set of classes
(column ``labels``: a multi-label manifest). With ``objects`` = 1 every draw and frame is
the single-object dataset's.

Labels and scenes are assigned per split by crossing: the j-th video of a split
gets class ``j % C`` and scene ``(j + j // lcm(C, A)) % A``, so classes are balanced
(counts differ by at most one) and every (class, scene) pair is equally frequent
in blocks of C x A videos; the order is then shuffled with the seed. Every random
draw of video ``i`` comes from ``np.random.default_rng([seed, i])``: the same seed
gives the same frames, whatever the number of workers.

Output folder::

    videos/00000.mp4 ...      H.264 (libx264, yuv420p, crf 18), ``frames`` frames at ``fps``
    train.csv, test.csv       path,label,appearance   (label = motion class name; val.csv too
                              with a validation split)
    train_appearance.csv, test_appearance.csv
                              path,label,motion       (label = scene name)
    train_boxes.csv, ...      with objects > 1: the keyframe boxes (train.csv ... then hold
                              path,labels,appearance: each video's set of classes)
    info.json                 parameters, classes, scenes, counts, each video's split, class and scene
    README.txt                the same for humans

Files are written to a temporary name and renamed, and ``info.json`` is written
last: a folder with an ``info.json`` for the same parameters is complete and is
reused without rendering (:func:`make_synthetic` is idempotent); an interrupted
run resumes, keeping the videos already renamed into place.

Speed: 300 videos of 64 x 64 x 64 frames take ~12 s of one CPU core (render ~20 ms
+ encode ~35 ms per video), ~11 kB per video.

What the dataset shows (measured on the default 300 videos, test split): a colour
histogram of one frame gives the scene (~100 %) but not the motion class (chance);
statistics of optical flow give the motion class (~97 %). A tiny 3D ResNet-18
trained from scratch on RGB clips memorises the 210 training videos by their
appearance and stays near chance on the test split for 40 epochs, while the same
network on frame differences (the ``diff`` modality) reaches ~77 % in 25 epochs:
motion is visible in 8 frames at stride 2, but appearance is the easier shortcut.
"""
from __future__ import annotations

import colorsys
import contextlib
import ctypes
import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vidssl.data.photo_backgrounds import PHOTO_DESCRIPTIONS, PHOTO_SCENES, photo_background
from vidssl.errors import SyntheticError
from vidssl.fileio import atomic_write, atomic_write_text

FORMAT_VERSION = 3  # bump when the rendering changes: cached datasets of another version are re-rendered

CLASSES: tuple[str, ...] = (
    "move_horizontal",
    "move_up",
    "move_down",
    "oscillate_horizontal",
    "oscillate_vertical",
    "orbit",
    "rotate",
    "zoom",
)

# Direction classes (opt-in: ``classes=DIRECTION_CLASSES``, ``vidssl data synth --preset
# direction``): a horizontal flip turns move_left into move_right and back, so a model
# trained or evaluated with flips confuses them (Something-Something-style tasks, large-scale
# study App. B.5); move_up / move_down are flip-invariant controls.
DIRECTION_CLASSES: tuple[str, ...] = ("move_left", "move_right", "move_up", "move_down")
_ALL_CLASSES: tuple[str, ...] = CLASSES + ("move_left", "move_right")

CLASS_DESCRIPTIONS = {
    "move_left": "constant velocity to the left, wrapping around",
    "move_right": "constant velocity to the right, wrapping around",
    "move_horizontal": "constant velocity to the left or to the right (drawn per video), wrapping around",
    "move_up": "constant velocity upwards, wrapping around",
    "move_down": "constant velocity downwards, wrapping around",
    "oscillate_horizontal": "sinusoidal back-and-forth along x",
    "oscillate_vertical": "sinusoidal back-and-forth along y",
    "orbit": "circular orbit, clockwise or anticlockwise",
    "rotate": "spins in place, clockwise or anticlockwise",
    "zoom": "pulses in size (grows and shrinks) in place",
}

SCENES: tuple[str, ...] = ("stripes_warm", "checker_cool", "blobs_green", "dots_purple", "rings_sand")

SCENE_DESCRIPTIONS = {
    "stripes_warm": "oriented stripes, reds and oranges",
    "checker_cool": "rotated checkerboard, blues and cyans",
    "blobs_green": "smooth random blobs, greens",
    "dots_purple": "rotated lattice of dots, purples",
    "rings_sand": "concentric rings, sand and brown",
}

# every scene a dataset may use: the procedural patterns and the photographs
ALL_SCENES: tuple[str, ...] = SCENES + PHOTO_SCENES
ALL_SCENE_DESCRIPTIONS = {**SCENE_DESCRIPTIONS, **PHOTO_DESCRIPTIONS}

# Presets of ``vidssl data synth --preset``: "demo" is the small dataset of the demo and
# the tests; "benchmark" the benchmark-size one (``builtin-bench:`` manifests) with
# photograph backgrounds and a validation split: 1,200 train, 300 val, 600 test videos.
PRESETS: dict[str, dict] = {
    "demo": {},
    "benchmark": {"videos": 2100, "test_fraction": 600 / 2100, "val_fraction": 300 / 2100,
                  "scenes": PHOTO_SCENES},
    # direction-sensitive classes (move_left / move_right / move_up / move_down) on the
    # procedural scenes: 400 videos, train / val / test 240 / 60 / 100
    "direction": {"videos": 400, "test_fraction": 0.25, "val_fraction": 0.15, "classes": DIRECTION_CLASSES},
    # 2-3 objects per video, each with its own motion class and a box per keyframe (builtin-detect:,
    # spatio-temporal action detection): 400 videos, train / val / test 240 / 60 / 100
    "detection": {"videos": 400, "test_fraction": 0.25, "val_fraction": 0.15, "objects": 3},
}

# (hue range, saturation ranges of the dark / light colour) of each scene's palette
_PALETTES = {
    "stripes_warm": ((0.00, 0.07), (0.55, 0.85), (0.35, 0.70)),
    "checker_cool": ((0.52, 0.62), (0.55, 0.85), (0.30, 0.60)),
    "blobs_green": ((0.24, 0.36), (0.50, 0.80), (0.30, 0.60)),
    "dots_purple": ((0.74, 0.86), (0.45, 0.75), (0.15, 0.40)),
    "rings_sand": ((0.09, 0.14), (0.30, 0.55), (0.15, 0.35)),
}

# Asymmetric polygons in units of the object size, centred near (0, 0): none has a
# rotational symmetry, so a spin is visible.
_SHAPES = {
    "ell": [(-0.5, -0.5), (-0.1, -0.5), (-0.1, 0.15), (0.5, 0.15), (0.5, 0.5), (-0.5, 0.5)],
    "triangle": [(-0.5, 0.4), (0.5, 0.4), (-0.25, -0.5)],
    "arrow": [(-0.5, -0.14), (0.05, -0.14), (0.05, -0.42), (0.5, 0.0), (0.05, 0.42), (0.05, 0.14), (-0.5, 0.14)],
    "flag": [(-0.5, -0.38), (0.5, -0.38), (0.18, 0.0), (0.5, 0.38), (-0.5, 0.38)],
    "half_disk": [(0.5 * math.cos(a), 0.5 * math.sin(a) - 0.2) for a in np.linspace(0.0, math.pi, 13)]
    + [(-0.5, -0.45), (0.1, -0.45)],
}

# Motion constants at 25 fps and 64 px (see the module docstring).
_REF_FPS, _REF_SIZE = 25.0, 64.0
_SPEED = 1.5  # px/frame, translations
_OSC_AMPLITUDE, _OSC_PERIOD = 8.0, 26.0  # px, frames
_ORBIT_RADIUS, _ORBIT_PERIOD = 9.0, 30.0  # px, frames
_SPIN = 8.0  # deg/frame
_ZOOM, _ZOOM_PERIOD = 1.4, 30.0  # max scale factor, frames
_OBJECT_SIZE = 0.3  # fraction of the frame size
_RATE_JITTER = (0.8, 1.25)  # per-video factor on speeds, amplitudes and periods
_CAMERA_SPEED = (0.5, 1.0)  # per-video factor on the ``camera`` pan speed
_CAMERA_TURN = 1.0  # the pan direction turns by up to this many full turns per 64 frames
_MAX_CAMERA = 4.0  # px/frame: faster pans are not a nuisance any more but the whole picture
_WANDER_SPEED = (0.5, 1.0)  # per-segment factor on the ``wander`` speed
_WANDER_SEGMENT = 16.0  # frames at 25 fps between the wanderer's changes of course (one 8 x 2 clip)
_MAX_WANDER = 4.0  # px/frame
_SUPERSAMPLE = 4  # sprites are drawn at 4x and area-averaged (anti-aliasing)
_KEYFRAME_SECONDS = 1.0  # several objects: a box per object every second (AVA's keyframes, 1 Hz)
_BOX_ALPHA = 0.01  # a box encloses every pixel the object covers by more than this


# ----------------------------------------------------------------------------- writing videos


def write_video(path: str | os.PathLike, frames, fps: float = 25.0, codec: str = "libx264",
                crf: int = 18, pix_fmt: str = "yuv420p", preset: str = "medium") -> Path:
    """Encode ``frames`` (uint8 ``[T, H, W, 3]`` RGB, or a sequence of ``[H, W, 3]``) to ``path``.

    The container comes from the file extension (``.mp4``, ``.avi``, ``.mkv`` ...).
    ``crf`` and ``preset`` apply to libx264/libx265 (crf 0 = lossless in YUV).
    The file is written under a temporary name and renamed, so an interrupted call
    never leaves a half-written file at ``path``. One encoding thread, and a heap that
    the encoder finds filled with one byte value (:func:`_deterministic_heap`): the output
    is byte-for-byte reproducible, and small frames encode fastest on one thread.
    Returns ``path`` as a :class:`Path`.
    """
    import av

    path = Path(path)
    arr = np.asarray(frames) if not isinstance(frames, np.ndarray) else frames
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise SyntheticError(f"write_video({path}): frames must be uint8 [T>0, H, W, 3], got {arr.dtype} {list(arr.shape)}")
    t, h, w, _ = arr.shape
    if pix_fmt in ("yuv420p", "yuv422p") and (h % 2 or w % 2):
        raise SyntheticError(f"write_video({path}): {pix_fmt} needs an even frame size, got {w}x{h}")
    if not fps > 0:
        raise SyntheticError(f"write_video({path}): fps must be positive, got {fps}")
    ext = path.suffix.lower().lstrip(".")
    container_format = {"mp4": "mp4", "m4v": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm",
                        "avi": "avi"}.get(ext)
    if container_format is None:
        raise SyntheticError(f"write_video({path}): unknown container extension {path.suffix!r} "
                             "(allowed: .mp4 .m4v .mov .mkv .webm .avi)")
    rate = Fraction(fps).limit_denominator(1001)

    def encode(f) -> None:  # PyAV muxes into the (seekable) file object: the same bytes as to a path
        with av.open(f, mode="w", format=container_format) as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            stream.codec_context.thread_count = 1
            if codec in ("libx264", "libx265"):
                stream.options = {"crf": str(crf), "preset": preset, "threads": "1"}  # x264's own thread count
            for frame in arr:
                # the conversion to the encoder's pixel format, explicit: the same swscale call every time
                yuv = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format=pix_fmt)
                for packet in stream.encode(yuv):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    with _deterministic_heap():
        return atomic_write(path, encode)


@contextlib.contextmanager
def _deterministic_heap():
    """glibc's M_PERTURB while encoding: fresh heap blocks (above the per-thread cache of small
    sizes) are filled with one byte value.

    The encoder path (PyAV -> libavcodec -> x264) reads some heap memory it has not written,
    so without this the bytes of a video depend on what the process allocated before (one
    video in twenty differed between two renders). A no-op where malloc is not glibc's."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        yield
        return
    m_perturb = -6
    before = os.environ.get("MALLOC_PERTURB_", "0")  # what glibc started with
    mallopt(m_perturb, 0xA5)
    try:
        yield
    finally:
        mallopt(m_perturb, int(before) if before.isdigit() else 0)


# ----------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class VideoSpec:
    """Everything that determines one video: all random draws come from ``(seed, index)``."""

    index: int
    label: str  # motion class
    scene: str  # appearance factor
    split: str  # "train", "val" or "test"
    seed: int = 0
    size: int = 64
    frames: int = 64
    fps: float = 25.0
    camera: float = 0.0  # camera pan speed (px/frame at 64 px, 25 fps); 0: a static camera
    wander: float = 0.0  # speed of the wandering distractor (px/frame at 64 px, 25 fps); 0: none
    objects: tuple[str, ...] = ()  # motion classes of the further moving objects (object 0's is ``label``)

    @property
    def name(self) -> str:
        return f"videos/{self.index:05d}.mp4"


def _check_args(videos: int, size: int, frames: int, fps: float, classes: Sequence[str],
                scenes: Sequence[str], test_fraction: float, camera: float = 0.0, wander: float = 0.0,
                val_fraction: float = 0.0, objects: int = 1) -> None:
    if not isinstance(videos, (int, np.integer)) or videos < 2:
        raise SyntheticError(f"videos must be an integer >= 2 (one per split at least), got {videos!r}")
    if not isinstance(size, (int, np.integer)) or size < 16 or size % 2:
        raise SyntheticError(f"size must be an even integer >= 16 (H.264 yuv420p), got {size!r}")
    if not isinstance(frames, (int, np.integer)) or frames < 2:
        raise SyntheticError(f"frames must be an integer >= 2, got {frames!r}")
    if not fps > 0:
        raise SyntheticError(f"fps must be positive, got {fps!r}")
    for what, given, allowed in (("class", classes, _ALL_CLASSES), ("scene", scenes, ALL_SCENES)):
        bad = [c for c in given if c not in allowed]
        if bad or not given or len(set(given)) != len(given):
            raise SyntheticError(f"bad {what} list {list(given)!r}: give distinct names among {', '.join(allowed)}")
    if not 0.0 < test_fraction < 1.0:
        raise SyntheticError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if not 0.0 <= val_fraction < 1.0 - test_fraction:
        raise SyntheticError(f"val_fraction must be in [0, 1 - test_fraction), got {val_fraction!r}")
    n_test = int(round(videos * test_fraction))
    n_val = int(round(videos * val_fraction))
    if val_fraction > 0 and (n_val < 1 or videos - n_test - n_val < 1):
        raise SyntheticError(f"{videos} videos leave no room for train, val and test splits "
                             f"(val_fraction {val_fraction:g}, test_fraction {test_fraction:g})")
    if not 0.0 <= camera <= _MAX_CAMERA:
        raise SyntheticError(f"camera must be a pan speed in [0, {_MAX_CAMERA:g}] px/frame, got {camera!r}")
    if not 0.0 <= wander <= _MAX_WANDER:
        raise SyntheticError(f"wander must be a speed in [0, {_MAX_WANDER:g}] px/frame, got {wander!r}")
    if isinstance(objects, bool) or not isinstance(objects, (int, np.integer)) or not 1 <= objects <= len(classes):
        raise SyntheticError(f"objects must be an integer in [1, {len(classes)}] (the classes of a video are distinct), "
                             f"got {objects!r}")


def video_specs(videos: int = 300, seed: int = 0, size: int = 64, frames: int = 64, fps: float = 25.0,
                classes: Optional[Sequence[str]] = None, scenes: Optional[Sequence[str]] = None,
                test_fraction: float = 0.3, camera: float = 0.0, wander: float = 0.0,
                val_fraction: float = 0.0, objects: int = 1) -> list[VideoSpec]:
    """The videos of a dataset, train split first (indices ``0 .. n_train - 1``), then
    val (when ``val_fraction`` > 0), then test.

    ``n_test = round(videos * test_fraction)`` (at least 1, at most ``videos - 1``),
    ``n_val = round(videos * val_fraction)``.
    Within a split the j-th video gets class ``j % C`` and scene
    ``(j + j // lcm(C, A)) % A`` (balanced classes, every pair equally frequent per
    C x A block), then the videos of the split are shuffled with ``seed``.
    With ``objects`` > 1 every video gets 2 to ``objects`` objects (uniform) and as many distinct
    classes drawn uniformly, from a random stream of their own (the scenes keep the crossing).
    """
    classes = tuple(CLASSES if classes is None else classes)
    scenes = tuple(SCENES if scenes is None else scenes)
    _check_args(videos, size, frames, fps, classes, scenes, test_fraction, camera, wander, val_fraction, objects)
    n_test = min(max(int(round(videos * test_fraction)), 1), videos - 1)
    n_val = int(round(videos * val_fraction))
    n_train = videos - n_test - n_val
    c, a = len(classes), len(scenes)
    period = c * a // math.gcd(c, a)
    rng = np.random.default_rng([seed, 0x5EED])
    object_rng = np.random.default_rng([seed, 0x0B1EC7])  # several objects: counts and classes, a stream of its own
    specs: list[VideoSpec] = []
    start = 0
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n == 0:  # no validation split: the draws of the train/test datasets stay as they were
            continue
        pairs = [(classes[j % c], scenes[(j + j // period) % a]) for j in range(n)]
        order = rng.permutation(n)
        for k, j in enumerate(order):
            label, scene = pairs[j]
            extra: tuple[str, ...] = ()
            if objects > 1:
                drawn = object_rng.choice(c, size=int(object_rng.integers(2, objects + 1)), replace=False)
                label, extra = classes[drawn[0]], tuple(classes[i] for i in drawn[1:])
            specs.append(VideoSpec(start + k, label, scene, split, int(seed), int(size), int(frames), float(fps),
                                   float(camera), float(wander), extra))
        start += n
    return specs


# ----------------------------------------------------------------------------- rendering


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32)


def _background(rng: np.random.Generator, scene: str, size: int, margin: int = 0) -> np.ndarray:
    """float32 [size + 2 margin, size + 2 margin, 3] in [0, 1]: the scene's pattern in a
    per-video palette. The frame at a still camera is ``[margin:margin + size]`` in both
    axes; the margin is the room a panning camera sees. It changes no random draw."""
    s = float(size)
    yy, xx = (np.mgrid[0:size + 2 * margin, 0:size + 2 * margin] - margin).astype(np.float32)
    theta = rng.uniform(0, np.pi)
    ct, st = np.cos(theta), np.sin(theta)
    u, v = xx * ct + yy * st, -xx * st + yy * ct  # rotated coordinates
    if scene == "stripes_warm":
        period = s * rng.uniform(0.12, 0.22)
        m = np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
        m = np.clip(0.5 + 1.5 * m, 0, 1)  # near-square stripes with soft edges
    elif scene == "checker_cool":
        cell = s * rng.uniform(0.09, 0.16)
        ph = rng.uniform(0, 2 * np.pi, 2)
        m = np.sin(np.pi * u / cell + ph[0]) * np.sin(np.pi * v / cell + ph[1])
        m = np.clip(0.5 + 2.0 * m, 0, 1)
    elif scene == "blobs_green":
        import cv2

        k = int(rng.integers(4, 7))
        coarse = rng.standard_normal((k, k)).astype(np.float32)
        # a periodic upsampling (wrap) keeps the pattern free of edge effects
        m = cv2.resize(np.pad(coarse, 1, mode="wrap"), (size + 2 * size // k, size + 2 * size // k),
                       interpolation=cv2.INTER_CUBIC)[size // k: size // k + size, size // k: size // k + size]
        m = 1.0 / (1.0 + np.exp(-3.0 * (m - np.median(m)) / (m.std() + 1e-6)))
        m = np.pad(m, margin, mode="wrap")  # the pattern has period ``size``: it tiles the margin
    elif scene == "dots_purple":
        spacing = s * rng.uniform(0.13, 0.2)
        off = rng.uniform(0, spacing, 2)
        du = (u + off[0]) % spacing - spacing / 2
        dv = (v + off[1]) % spacing - spacing / 2
        r = spacing * rng.uniform(0.22, 0.34)
        m = np.clip(r - np.sqrt(du * du + dv * dv) + 0.5, 0, 1)  # anti-aliased disks
    elif scene == "rings_sand":
        cx, cy = rng.uniform(-0.5 * s, 1.5 * s, 2)
        period = s * rng.uniform(0.12, 0.2)
        m = np.sin(2 * np.pi * np.hypot(xx - cx, yy - cy) / period + rng.uniform(0, 2 * np.pi))
        m = np.clip(0.5 + 1.5 * m, 0, 1)
    else:  # pragma: no cover - names are checked before
        raise SyntheticError(f"unknown scene {scene!r}")
    (h0, h1), sat_dark, sat_light = _PALETTES[scene]
    hue = rng.uniform(h0, h1)
    dark = _hsv(hue, rng.uniform(*sat_dark), rng.uniform(0.40, 0.55))
    light = _hsv(hue + rng.uniform(-0.03, 0.03), rng.uniform(*sat_light), rng.uniform(0.70, 0.85))
    img = dark + m[..., None] * (light - dark)
    # illumination ramp in a random direction: per-video variation within a scene
    phi = rng.uniform(0, 2 * np.pi)
    ramp = ((xx - s / 2) * np.cos(phi) + (yy - s / 2) * np.sin(phi)) / s
    img = img * (1.0 + rng.uniform(0.0, 0.35) * ramp)[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


def _sprite(rng: np.random.Generator, size: int, diameter: float) -> np.ndarray:
    """float32 [k, k, 4]: premultiplied RGB + alpha of one object centred in a k x k patch.

    ``k`` leaves room for any rotation at the largest zoom. Two colours of uniformly
    random hue split by a random line (so the texture is asymmetric too) and a dark
    outline; drawn at 4x and area-averaged (anti-aliasing).
    """
    import cv2

    k = min(size, int(math.ceil(math.sqrt(2.0) * diameter * _ZOOM)) + 4)
    ss = k * _SUPERSAMPLE
    name = list(_SHAPES)[int(rng.integers(len(_SHAPES)))]
    pts = np.array(_SHAPES[name], np.float64)
    pts -= (pts.max(0) + pts.min(0)) / 2  # centre the bounding box on the patch centre
    c = (ss - 1) / 2.0
    shift = 4  # cv2 fixed-point sub-pixel bits
    poly = np.round((pts * diameter * _SUPERSAMPLE + c) * (1 << shift)).astype(np.int32)
    fill = np.zeros((ss, ss), np.uint8)
    cv2.fillPoly(fill, [poly], 255, lineType=cv2.LINE_8, shift=shift)
    outline = np.zeros((ss, ss), np.uint8)
    thick = max(2, int(round(_SUPERSAMPLE * size / _REF_SIZE)))
    cv2.polylines(outline, [poly], True, 255, thickness=thick, lineType=cv2.LINE_8, shift=shift)
    # a random line through the object splits it into colour A and colour B
    ang = rng.uniform(0, 2 * np.pi)
    off = rng.uniform(-0.2, 0.2) * diameter * _SUPERSAMPLE
    r = np.arange(ss, dtype=np.float32) - c
    side = (r[None, :] * np.cos(ang) + r[:, None] * np.sin(ang)) > off
    col_a = _hsv(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0))
    col_b = _hsv(rng.uniform(0, 1), rng.uniform(0.3, 1.0), rng.uniform(0.35, 1.0))
    col_line = _hsv(0, 0, rng.uniform(0.0, 0.15))
    f = (fill > 0)[..., None]
    o = (outline > 0)[..., None]
    rgb = np.where(o, col_line, np.where(side[..., None], col_a, col_b))
    alpha = (f | o).astype(np.float32)
    big = np.concatenate([rgb * alpha, alpha], axis=-1)
    return cv2.resize(big, (k, k), interpolation=cv2.INTER_AREA)


def _paste(frame: np.ndarray, sprite: np.ndarray, angle: float, scale: float, x: float, y: float) -> None:
    """Draw the sprite over ``frame`` (float32 [S, S, 3], in place), rotated by ``angle``
    degrees and scaled about its centre, with its centre at (x, y), wrapping around the
    frame edges (a torus: what leaves on one side comes back on the other)."""
    size, k = frame.shape[0], sprite.shape[0]
    patch, ox, oy = _placed_patch(sprite, angle, scale, x, y)
    if 0 <= ox <= size - k and 0 <= oy <= size - k:  # inside the frame: a plain view
        ix = np.s_[oy:oy + k, ox:ox + k]
    else:  # across an edge: wrapped row and column indices
        ix = np.ix_((oy + np.arange(k)) % size, (ox + np.arange(k)) % size)
    region = frame[ix]
    region *= 1.0 - patch[..., 3:]
    region += patch[..., :3]
    frame[ix] = region


def _placed_patch(sprite: np.ndarray, angle: float, scale: float, x: float, y: float):
    """The sprite rotated and scaled about its centre, moved to (x, y): (patch [k, k, 4], ox, oy),
    the patch's top-left corner at integer pixel (ox, oy) of the (unwrapped) frame."""
    import cv2

    k = sprite.shape[0]
    c = (k - 1) / 2.0
    ox, oy = math.floor(x - c), math.floor(y - c)  # integer placement of the patch
    m = cv2.getRotationMatrix2D((c, c), float(angle), float(scale))
    m[0, 2] += x - c - ox  # the sub-pixel rest of the move goes into the warp
    m[1, 2] += y - c - oy
    patch = cv2.warpAffine(sprite, m, (k, k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=(0, 0, 0, 0))
    return patch, ox, oy


def _alpha_box(sprite: np.ndarray, angle: float, scale: float, x: float, y: float, size: int):
    """Pixel box (x1, y1, x2, y2) (pixel edges: x2 = last column + 1) of the pixels the placed
    sprite covers by more than ``_BOX_ALPHA``, or None when they wrap around a frame edge."""
    patch, ox, oy = _placed_patch(sprite, angle, scale, x % size, y % size)  # _paste wraps: the same pixels
    rows, cols = np.nonzero(patch[..., 3] > _BOX_ALPHA)
    if rows.size == 0:
        return None
    x1, x2, y1, y2 = ox + cols.min(), ox + cols.max() + 1, oy + rows.min(), oy + rows.max() + 1
    if x1 < 0 or y1 < 0 or x2 > size or y2 > size:  # partly on the other side of the torus
        return None
    return int(x1), int(y1), int(x2), int(y2)


def _static_scale(rng: np.random.Generator) -> float:
    """A constant scale with the same marginal as the zoom pulse at a random time."""
    return float(_ZOOM ** np.sin(rng.uniform(0, 2 * np.pi)))


def motion_parameters(spec: VideoSpec) -> dict:
    """The per-video draws of ``spec`` (nuisances and motion), as plain numbers.

    Draw order is fixed (background, object, distractors, motion) so that each video
    depends only on ``(seed, index)`` and its class and scene.
    """
    return _draw(spec)[3]


def _object_tracks(spec: VideoSpec, p: dict, px: float) -> list[tuple]:
    """(x, y, angle, scale) per frame of every moving object (object 0 first), each float64 [T],
    in frame pixels: a panning camera moves them with the scene."""
    tracks = [_trajectory(q, spec.frames, spec.fps, px) for q in [p, *p.get("objects", [])]]
    if _camera_margin(spec):
        ox, oy = camera_path(p, spec.frames, spec.fps, px)
        tracks = [(x - ox, y - oy, a, s) for x, y, a, s in tracks]  # the objects live in the scene
    return tracks


def keyframe_times(spec: VideoSpec) -> list[float]:
    """Seconds of the keyframes of a video with several objects: every ``_KEYFRAME_SECONDS`` from
    there on, while the frame (``round(t * fps)``) is in the video."""
    times, t = [], _KEYFRAME_SECONDS
    while round(t * spec.fps) <= spec.frames - 1:
        times.append(t)
        t += _KEYFRAME_SECONDS
    return times


def object_boxes(spec: VideoSpec) -> list[tuple[float, int, str, tuple[float, float, float, float]]]:
    """Boxes of the moving objects at the keyframes: ``(seconds, object index, class, (x1, y1, x2,
    y2))`` normalised to [0, 1], the bounding box of the pixels an object covers by more than 1 %
    (its alpha; objects drawn later may hide part of it). No box for an object that wraps around
    a frame edge at that keyframe."""
    _, sprite, _, p, px, extras = _draw(spec)
    sprites, labels = [sprite] + [s for s, _ in extras], [spec.label, *spec.objects]
    out = []
    for t in keyframe_times(spec):
        f = int(round(t * spec.fps))
        for o, (s, (x, y, angle, scale)) in enumerate(zip(sprites, _object_tracks(spec, p, px))):
            box = _alpha_box(s, angle[f], scale[f], x[f], y[f], spec.size)
            if box is not None:
                out.append((t, o, labels[o], tuple(v / spec.size for v in box)))
    return out


def _camera_margin(spec: VideoSpec) -> int:
    """Pixels of background beyond the frame that the pan can reveal (0 at a still camera)."""
    if spec.camera <= 0:
        return 0
    travel = spec.camera * _CAMERA_SPEED[1] * (spec.size / _REF_SIZE) * (spec.frames - 1) * (_REF_FPS / spec.fps)
    return int(math.ceil(travel)) + 2


def _draw(spec: VideoSpec):
    rng = np.random.default_rng([spec.seed, spec.index])
    size = spec.size
    margin = _camera_margin(spec)
    bg = (photo_background if spec.scene in PHOTO_SCENES else _background)(rng, spec.scene, size, margin)
    px = size / _REF_SIZE  # px at this size per px at 64
    diameter = _OBJECT_SIZE * size * rng.uniform(0.8, 1.2)
    sprite = _sprite(rng, size, diameter)
    for _ in range(int(rng.integers(0, 2))):  # static distractors, baked into the background
        d = _sprite(rng, size, _OBJECT_SIZE * size * rng.uniform(0.8, 1.2))
        _paste(bg, d, rng.uniform(0, 360), _static_scale(rng), *(rng.uniform(0, size, 2) + margin))
    rate = rng.uniform(*_RATE_JITTER)  # speeds x rate, periods / rate
    p = {
        "label": spec.label, "scene": spec.scene, "diameter": float(diameter),
        "x0": float(rng.uniform(0, size)), "y0": float(rng.uniform(0, size)),
        "angle0": float(rng.uniform(0, 360)), "scale0": _static_scale(rng),
        "rate": float(rate), "phase": float(rng.uniform(0, 2 * np.pi)),
        "direction": float(rng.choice([-1.0, 1.0])),
        "amplitude": float(rng.uniform(0.8, 1.2)),  # extra factor on amplitude / radius
    }
    if spec.camera > 0:  # drawn last: a still camera leaves every other draw as it was
        p["camera_speed"] = float(spec.camera * rng.uniform(*_CAMERA_SPEED))
        p["camera_angle0"] = float(rng.uniform(0, 2 * np.pi))
        p["camera_turn"] = float(rng.uniform(-1, 1) * _CAMERA_TURN * 2 * np.pi / 64)  # rad/frame at 25 fps
    wanderer = None
    if spec.wander > 0:  # drawn after the camera: neither changes the other's draws
        wanderer = _sprite(rng, size, _OBJECT_SIZE * size * rng.uniform(0.8, 1.2))
        segments = int(math.ceil((spec.frames - 1) * (_REF_FPS / spec.fps) / _WANDER_SEGMENT)) + 1
        p["wander_x0"], p["wander_y0"] = (float(v) for v in rng.uniform(0, size, 2))
        p["wander_angle"], p["wander_scale"] = float(rng.uniform(0, 360)), _static_scale(rng)
        p["wander_offset"] = float(rng.uniform(0, _WANDER_SEGMENT))  # where the first segment ends
        p["wander_speeds"] = [float(v) for v in spec.wander * rng.uniform(*_WANDER_SPEED, segments)]
        p["wander_headings"] = [float(v) for v in rng.uniform(0, 2 * np.pi, segments)]
    extras = []  # several objects: drawn after everything else, so one object leaves every draw above as it was
    for label in spec.objects:
        d = _OBJECT_SIZE * size * rng.uniform(0.8, 1.2)
        q = {"label": label, "diameter": float(d)}
        s = _sprite(rng, size, d)
        q.update({"x0": float(rng.uniform(0, size)), "y0": float(rng.uniform(0, size)),
                  "angle0": float(rng.uniform(0, 360)), "scale0": _static_scale(rng),
                  "rate": float(rng.uniform(*_RATE_JITTER)), "phase": float(rng.uniform(0, 2 * np.pi)),
                  "direction": float(rng.choice([-1.0, 1.0])), "amplitude": float(rng.uniform(0.8, 1.2))})
        extras.append((s, q))
    if extras:
        p["objects"] = [q for _, q in extras]
    return bg, sprite, wanderer, p, px, extras


def wander_path(p: dict, frames: int, fps: float, px: float):
    """Per-frame centre (x, y) of the wandering distractor, each float64 [T] in px.

    Its velocity is piecewise constant: segment k (time in frames at 25 fps, segment 0
    ending at ``wander_offset``, the others ``_WANDER_SEGMENT`` long) moves at
    ``wander_speeds[k]`` in the direction ``wander_headings[k]``; the centre is the
    integral of that velocity from the start point (it wraps around the frame when pasted).
    """
    t = np.arange(frames, dtype=np.float64) * (_REF_FPS / fps)
    speeds, headings = np.asarray(p["wander_speeds"]) * px, np.asarray(p["wander_headings"])
    ends = p["wander_offset"] + _WANDER_SEGMENT * np.arange(len(speeds), dtype=np.float64)
    starts = np.concatenate([[0.0], ends[:-1]])
    ends[-1] = np.inf  # the last segment lasts to the end of the video
    inside = np.clip(np.minimum(t[:, None], ends[None]) - starts[None], 0.0, None)  # [T, segments]
    return (p["wander_x0"] + inside @ (speeds * np.cos(headings)),
            p["wander_y0"] + inside @ (speeds * np.sin(headings)))


def camera_path(p: dict, frames: int, fps: float, px: float):
    """Per-frame offset (ox, oy) of the camera from its start, each float64 [T] in px.

    The camera pans at a constant speed v in a direction that turns at a constant rate w:
    velocity v (cos(a0 + w t), sin(a0 + w t)), so the offset is its closed-form integral.
    The picture (background and object) moves by -(ox, oy) on the screen.
    """
    t = np.arange(frames, dtype=np.float64) * (_REF_FPS / fps)
    v, a0, w = p.get("camera_speed", 0.0) * px, p.get("camera_angle0", 0.0), p.get("camera_turn", 0.0)
    if abs(w) < 1e-9:
        return v * t * math.cos(a0), v * t * math.sin(a0)
    return v * (np.sin(a0 + w * t) - math.sin(a0)) / w, -v * (np.cos(a0 + w * t) - math.cos(a0)) / w


def _trajectory(p: dict, frames: int, fps: float, px: float):
    """Per-frame (x, y, angle in degrees, scale) of the moving object, each float64 [T]."""
    t = np.arange(frames, dtype=np.float64) * (_REF_FPS / fps)  # time in frames at 25 fps
    one = np.ones_like(t)
    x, y, angle, scale = p["x0"] * one, p["y0"] * one, p["angle0"] * one, p["scale0"] * one
    r, ph, d, amp = p["rate"], p["phase"], p["direction"], p["amplitude"]
    label = p["label"]
    if label == "move_horizontal":
        x = x + d * _SPEED * px * r * t
    elif label in ("move_left", "move_right"):  # the drawn direction is ignored: the class is the direction
        x = x + (1.0 if label == "move_right" else -1.0) * _SPEED * px * r * t
    elif label == "move_up":
        y = y - _SPEED * px * r * t
    elif label == "move_down":
        y = y + _SPEED * px * r * t
    elif label in ("oscillate_horizontal", "oscillate_vertical"):
        offset = _OSC_AMPLITUDE * px * amp * np.sin(2 * np.pi * t * r / _OSC_PERIOD + ph)
        if label == "oscillate_horizontal":
            x = x + offset
        else:
            y = y + offset
    elif label == "orbit":
        a = d * 2 * np.pi * t * r / _ORBIT_PERIOD + ph
        x = x + _ORBIT_RADIUS * px * amp * np.cos(a)
        y = y + _ORBIT_RADIUS * px * amp * np.sin(a)
    elif label == "rotate":
        angle = angle + d * _SPIN * r * t
    elif label == "zoom":
        scale = _ZOOM ** np.sin(2 * np.pi * t * r / _ZOOM_PERIOD + ph)
    else:  # pragma: no cover - names are checked before
        raise SyntheticError(f"unknown motion class {label!r}")
    return x, y, angle, scale


def _in_grey_levels(sprite: np.ndarray) -> np.ndarray:
    """A sprite's premultiplied colour scaled to grey levels (0-255); alpha stays in [0, 1]."""
    out = sprite * 255.0
    out[..., 3] = sprite[..., 3]
    return out


def render_video(spec: VideoSpec) -> np.ndarray:
    """The frames of ``spec``: uint8 ``[frames, size, size, 3]`` RGB (before encoding)."""
    if spec.label not in _ALL_CLASSES:
        raise SyntheticError(f"unknown motion class {spec.label!r} (allowed: {', '.join(_ALL_CLASSES)})")
    if spec.scene not in ALL_SCENES:
        raise SyntheticError(f"unknown scene {spec.scene!r} (allowed: {', '.join(ALL_SCENES)})")
    bg, sprite, wanderer, p, px, extras = _draw(spec)
    tracks = _object_tracks(spec, p, px)
    if wanderer is not None:
        wx, wy = wander_path(p, spec.frames, spec.fps, px)
    out = np.empty((spec.frames, spec.size, spec.size, 3), np.float32)
    margin = (bg.shape[0] - spec.size) // 2  # room that _draw left for the pan (0: still camera)
    if margin:  # the frame is a window onto the larger background, moved by the camera path
        import cv2

        ox, oy = camera_path(p, spec.frames, spec.fps, px)
        if wanderer is not None:
            wx, wy = wx - ox, wy - oy
        for i in range(spec.frames):
            window = np.float32([[1, 0, margin + ox[i]], [0, 1, margin + oy[i]]])
            out[i] = cv2.warpAffine(bg, window, (spec.size, spec.size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REFLECT) * 255.0
    else:
        out[:] = bg * 255.0
    if wanderer is not None:  # under the moving object: the object of the class stays whole
        wanderer = _in_grey_levels(wanderer)
        for i in range(spec.frames):
            _paste(out[i], wanderer, p["wander_angle"], p["wander_scale"], wx[i], wy[i])
    for s, (x, y, angle, scale) in zip([sprite] + [s for s, _ in extras], tracks):  # object 0, then the others
        s = _in_grey_levels(s)
        for i in range(spec.frames):
            _paste(out[i], s, angle[i], scale[i], x[i], y[i])
    np.clip(out + 0.5, 0, 255, out=out)
    return out.astype(np.uint8)


# ----------------------------------------------------------------------------- the dataset


def _render_and_write(args) -> str:
    spec, root, crf = args
    path = Path(root) / spec.name
    write_video(path, render_video(spec), spec.fps, crf=crf)
    return str(path)


def _params(videos, seed, size, frames, fps, classes, scenes, test_fraction, crf, camera, wander,
            val_fraction=0.0, objects=1) -> dict:
    params = {"format": FORMAT_VERSION, "videos": int(videos), "seed": int(seed), "size": int(size),
              "frames": int(frames), "fps": float(fps), "classes": list(classes), "scenes": list(scenes),
              "test_fraction": float(test_fraction), "crf": int(crf), "camera": float(camera),
              "wander": float(wander)}
    if val_fraction > 0:  # absent otherwise: datasets rendered before the val split stay valid
        params["val_fraction"] = float(val_fraction)
    if objects > 1:  # likewise: the single-object datasets keep their parameters
        params["objects"] = int(objects)
    return params


def _splits(val: bool) -> tuple[str, ...]:
    return ("train", "val", "test") if val else ("train", "test")


def _outputs(root: Path, val: bool = False, boxes: bool = False) -> dict[str, Path]:
    out = {}
    for split in _splits(val):
        out[split] = root / f"{split}.csv"
        out[f"{split}_appearance"] = root / f"{split}_appearance.csv"
        if boxes:
            out[f"{split}_boxes"] = root / f"{split}_boxes.csv"
    return {**out, "info": root / "info.json"}


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def make_synthetic(out_dir: str | os.PathLike, videos: int = 300, seed: int = 0, size: int = 64,
                   frames: int = 64, fps: float = 25.0, classes: Optional[Sequence[str]] = None,
                   scenes: Optional[Sequence[str]] = None, test_fraction: float = 0.3, crf: int = 18,
                   workers: int = 1, progress: bool = False, camera: float = 0.0,
                   wander: float = 0.0, val_fraction: float = 0.0, objects: int = 1) -> dict[str, Path]:
    """Render the built-in dataset into ``out_dir`` (see the module docstring).

    ``videos`` in total (``round(videos * test_fraction)`` of them in the test split and,
    with ``val_fraction`` > 0, ``round(videos * val_fraction)`` in a validation split),
    ``size`` x ``size`` pixels, ``frames`` frames at ``fps``; ``classes`` / ``scenes``
    restrict the motion classes / appearance factors (default: all of
    :data:`CLASSES` / :data:`SCENES`); ``camera`` > 0 pans the camera at that speed
    (px/frame at 64 px and 25 fps, see "Camera motion" in the module docstring; 0, the
    default, is the standard still-camera dataset); ``wander`` > 0 adds a distractor that
    changes course every 16 frames at about that speed ("Wandering distractor"; 0, the
    default, has none); ``crf`` is the H.264 quality (18: decoded
    frames within a few grey levels of the rendered ones); ``workers`` > 1 renders in
    that many processes; ``objects`` > 1 shows 2 to that many moving objects per video, each
    with its own class, and writes the keyframe boxes ("Several objects").

    Returns ``{"train", "test", "train_appearance", "test_appearance", "info"}`` (plus
    ``"val"`` and ``"val_appearance"`` with a validation split, ``"<split>_boxes"`` with
    several objects) -> paths. Reuses a
    complete dataset with the same parameters without rendering.
    """
    from vidssl.data.manifests import write_manifest

    classes = tuple(CLASSES if classes is None else classes)
    scenes = tuple(SCENES if scenes is None else scenes)
    specs = video_specs(videos, seed, size, frames, fps, classes, scenes, test_fraction, camera, wander,
                        val_fraction, objects)
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise SyntheticError(f"workers must be a positive integer, got {workers!r}")
    root = Path(out_dir)
    outputs = _outputs(root, val_fraction > 0, objects > 1)
    params = _params(videos, seed, size, frames, fps, classes, scenes, test_fraction, crf, camera, wander,
                     val_fraction, objects)
    info = _read_json(outputs["info"])
    if (info is not None and info.get("params") == params and all(p.is_file() for p in outputs.values())
            and all((root / s.name).is_file() for s in specs)):
        return outputs

    root.mkdir(parents=True, exist_ok=True)
    (root / "videos").mkdir(exist_ok=True)
    outputs["info"].unlink(missing_ok=True)  # the folder is incomplete until info.json is back
    pending = root / ".pending.json"  # parameters of a run in progress: its finished videos are reusable
    keep = _read_json(pending) == params
    if not keep:
        for old in (root / "videos").glob("*.mp4"):  # rendered with other parameters
            old.unlink()
        _write_text(pending, json.dumps(params))
    todo = [s for s in specs if not (keep and (root / s.name).is_file())]
    jobs = [(s, str(root), crf) for s in todo]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="rendering", unit="video")
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        # spawn: no fork of a parent that may hold torch / OpenMP / OpenCV threads
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for _ in pool.imap_unordered(_render_and_write, jobs, chunksize=4):
                if bar is not None:
                    bar.update()
    else:
        for job in jobs:
            _render_and_write(job)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()

    splits = _splits(val_fraction > 0)
    for split in splits:
        rows = [s for s in specs if s.split == split]
        names = [s.name for s in rows]
        if objects > 1:  # the classes of a video's objects: a multi-label manifest, and the boxes beside it
            from vidssl.data.boxes import write_boxes

            sets = [sorted({s.label, *s.objects}, key=classes.index) for s in rows]
            write_manifest(outputs[split], names, label_sets=sets, appearance=[s.scene for s in rows])
            write_manifest(outputs[f"{split}_appearance"], names, [s.scene for s in rows],
                           motion=[";".join(c) for c in sets])
            write_boxes(outputs[f"{split}_boxes"], [(Path(s.name).stem, t, *box, label, str(o))
                                                     for s in rows for t, o, label, box in object_boxes(s)])
            continue
        write_manifest(outputs[split], names, [s.label for s in rows], appearance=[s.scene for s in rows])
        write_manifest(outputs[f"{split}_appearance"], names, [s.scene for s in rows],
                       motion=[s.label for s in rows])
    counts = {split: {name: sum(1 for s in specs if s.split == split and name in (s.label, *s.objects))
                      for name in classes} for split in splits}  # several objects: videos showing the class
    scene_counts = {split: {name: sum(1 for s in specs if s.split == split and s.scene == name) for name in scenes}
                    for split in splits}
    info = {
        "params": params,
        "classes": {c: CLASS_DESCRIPTIONS[c] for c in classes},
        "scenes": {s: ALL_SCENE_DESCRIPTIONS[s] for s in scenes},
        "class_counts": counts,
        "scene_counts": scene_counts,
        "videos": [{"path": s.name, "split": s.split, "label": s.label, "appearance": s.scene,
                    **({"objects": [s.label, *s.objects]} if s.objects else {})} for s in specs],
    }
    _write_text(root / "README.txt", _readme(params, classes, scenes, counts))
    _write_text(outputs["info"], json.dumps(info, indent=1))
    pending.unlink(missing_ok=True)
    return outputs


def _readme(params: dict, classes: Sequence[str], scenes: Sequence[str], counts: dict) -> str:
    lines = [
        "vidssl built-in synthetic dataset (vidssl.data.synthetic)",
        "",
        f"{params['videos']} videos, {params['size']}x{params['size']} px, {params['frames']} frames at "
        f"{params['fps']:g} fps, seed {params['seed']}, H.264 crf {params['crf']}.",
        ", ".join(f"{split}: {sum(n.values())} videos" for split, n in counts.items()) + ".",
        "",
        "train.csv / test.csv: path,label,appearance  - label = motion class (the task)",
        "train_appearance.csv / test_appearance.csv: path,label,motion  - label = appearance factor (scene)",
        "The motion class and the scene are crossed in equal numbers; everything else",
        "(object shape, colours, size, position, orientation, speed, distractors) is drawn",
        "independently of both. Only motion tells the classes apart.",
        *([f"Several objects: 2 to {params['objects']} moving objects per video, each with its own class;",
           "train_boxes.csv ...: AVA-layout boxes (video, seconds, x1, y1, x2, y2, class, object) at 1 Hz."]
          if params.get("objects") else []),
        "",
        "Motion classes:",
        *[f"  {c:22s} {CLASS_DESCRIPTIONS[c]}" for c in classes],
        "",
        "Scenes (appearance factor):",
        *[f"  {s:22s} {ALL_SCENE_DESCRIPTIONS[s]}" for s in scenes],
        "",
    ]
    return "\n".join(lines)
