"""Improved Dense Trajectories (Wang & Schmid 2013) and Fisher vectors, in numpy/OpenCV.

The IDT prior of the dense-trajectory-clustering paper (Sec. 3.3, 4.2, App. A):
``vidssl idt extract`` (descriptors per video), ``vidssl idt fit`` (PCA + GMM),
``vidssl idt encode`` (count-sketched Fisher vectors). See docs/idt.md.
"""
from vidssl.errors import IDTOptionError
from vidssl.idt.options import IDTOptions
from vidssl.idt.trajectories import TrajectoryExtractor, extract_frames

__all__ = ["IDTOptions", "IDTOptionError", "TrajectoryExtractor", "extract_frames"]
