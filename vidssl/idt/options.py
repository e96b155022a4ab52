"""All options of the IDT extractor in one place (documented again in docs/idt.md).

Defaults are those of the original ``DenseTrackStab`` (Wang & Schmid, ICCV 2013, release
of October 2013), used by the IDT prior of the dense-trajectory-clustering paper
(Sec. 3.3, Sec. 4.2). Only ``flow``, ``camera``, ``keypoints``, ``person``,
``max_short_side`` and ``max_tracks`` are meant to be changed in normal use.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

from vidssl.errors import IDTOptionError

FLOWS = ("farneback", "dis")
KEYPOINTS = ("orb", "sift")
PERSONS = ("none", "boxes", "hog")


@dataclass
class IDTOptions:
    """Options of Improved Dense Trajectories.

    Sampling and tracking (original defaults):
      scale_num: at most this many spatial scales (8); a level is kept while
        min(w, h) / scale_stride^k >= patch_size.
      scale_stride: sqrt(2) between levels (scale factor 1/sqrt(2)).
      min_distance: dense sampling grid step in pixels (5).
      quality: a grid point is kept when the minimum eigenvalue of its structure tensor
        exceeds quality x the largest one of the frame (0.001).
      init_gap: re-sample empty grid cells every this many frames (1).
      track_length: L, frames per trajectory (15).
      min_var / max_var: a track is static when both std devs < min_var (sqrt(3)),
        erratic when one > max_var (50).
      max_dis: a track jumps when its largest step > max_dis (20 px) and > 0.7 of its length.

    Descriptors: patch_size (32) x patch_size x L tube, nxy_cell x nxy_cell (2x2) spatial
      and nt_cell (3) temporal cells; epsilon (0.05) added to every bin; min_flow (0.4)
      below which flow goes to the HOF no-motion bin.

    Flow: ``flow`` = "farneback" (original: polynomial size 7, sigma 1.5, window 10,
      2 iterations, Gaussian window, per pyramid level, median_ksize 5 median after each
      level) or "dis" (OpenCV's DIS, ``dis_preset``; faster, computed once at full
      resolution and resized to the other levels).

    Camera motion: ``camera`` True = IDT (homography from keypoint + flow matches, RANSAC
      threshold ransac_thresh 1 px, accepted with > min_matches 50 matches and
      > min_inliers 25 inliers, else identity; tracks with largest warped displacement
      <= camera_disp (1 px) removed). False = plain Dense Trajectories (no warping, no
      camera-track removal). ``keypoints``: "orb" (default) or "sift" (SURF of the original
      is not in the pip OpenCV wheel); ``match_window`` 25 px like the original windowed
      matching; ``flow_matches`` 1000 good-features-to-track points.

    Person masking (App. A of the paper): ``person`` = "none", "boxes" (give
      ``boxes_file`` per video, or a folder, see extract.py) or "hog" (OpenCV's HOG people
      detector, only in OpenCV builds that still ship it). Boxes only mask the keypoints
      used for the homography, as in the original.

    Limits: ``max_short_side`` resizes frames so that the short side is at most this
      (None = original size); ``max_tracks`` keeps at most this many trajectories per
      video (uniformly sub-sampled with a fixed seed; None = all); ``max_frames``.
    """

    scale_num: int = 8
    scale_stride: float = math.sqrt(2.0)
    min_distance: int = 5
    quality: float = 0.001
    init_gap: int = 1
    track_length: int = 15
    min_var: float = math.sqrt(3.0)
    max_var: float = 50.0
    max_dis: float = 20.0
    patch_size: int = 32
    nxy_cell: int = 2
    nt_cell: int = 3
    epsilon: float = 0.05
    min_flow: float = 0.4

    flow: str = "farneback"
    poly_n: int = 7
    poly_sigma: float = 1.5
    winsize: int = 10
    iterations: int = 2
    median_ksize: int = 5
    dis_preset: str = "fast"

    camera: bool = True
    keypoints: str = "orb"
    max_keypoints: int = 1000
    match_window: int = 25
    flow_matches: int = 1000
    ransac_thresh: float = 1.0
    min_matches: int = 50
    min_inliers: int = 25
    camera_disp: float = 1.0
    warp_margin: int = 5

    person: str = "none"

    max_short_side: Optional[int] = None
    max_tracks: Optional[int] = None
    max_frames: Optional[int] = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def bad(name, allowed):
            raise IDTOptionError(f"IDT option {name}={getattr(self, name)!r}: allowed {allowed}")

        if self.flow not in FLOWS:
            bad("flow", FLOWS)
        if self.keypoints not in KEYPOINTS:
            bad("keypoints", KEYPOINTS)
        if self.person not in PERSONS:
            bad("person", PERSONS)
        if self.dis_preset not in ("ultrafast", "fast", "medium"):
            bad("dis_preset", ("ultrafast", "fast", "medium"))
        for name in ("scale_num", "min_distance", "init_gap", "track_length", "patch_size",
                     "nxy_cell", "nt_cell", "iterations", "winsize", "poly_n"):
            if int(getattr(self, name)) < 1:
                bad(name, "an integer >= 1")
        if self.track_length < self.nt_cell:
            bad("track_length", f">= nt_cell ({self.nt_cell})")
        if self.patch_size % self.nxy_cell:
            bad("patch_size", f"a multiple of nxy_cell ({self.nxy_cell})")
        if self.median_ksize not in (0, 1, 3, 5):
            bad("median_ksize", (0, 1, 3, 5))
        if self.scale_stride <= 1:
            bad("scale_stride", "> 1")
        for name in ("max_short_side", "max_tracks", "max_frames"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                bad(name, "None or an integer >= 1")
        if self.max_short_side is not None and self.max_short_side < self.patch_size:
            bad("max_short_side", f">= patch_size ({self.patch_size})")

    # descriptor sizes -------------------------------------------------------------
    @property
    def cells(self) -> int:
        return self.nxy_cell * self.nxy_cell

    def dims(self) -> dict:
        """Length of each descriptor type (30, 96, 108, 96, 96 with the defaults)."""
        c = self.cells * self.nt_cell
        return {"traj": 2 * self.track_length, "hog": 8 * c, "hof": 9 * c, "mbhx": 8 * c, "mbhy": 8 * c}

    def columns(self) -> dict:
        """Column slices of each part of a trajectory row (the original text layout):
        10 info columns, then traj, hog, hof, mbhx, mbhy (436 columns by default)."""
        out = {"info": slice(0, 10)}
        start = 10
        for name, d in self.dims().items():
            out[name] = slice(start, start + d)
            start += d
        return out

    @property
    def row_dim(self) -> int:
        return 10 + sum(self.dims().values())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "IDTOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise IDTOptionError(f"unknown IDT option(s) {unknown}; allowed: {sorted(names)}")
        return cls(**d)


DESCRIPTORS = ("traj", "hog", "hof", "mbhx", "mbhy")
