"""vidssl: self-supervised video representation learning and its evaluation."""

__version__ = "0.1.0"
