"""Local Aggregation's K, m and background size k from the number of training videos.

The dense-trajectory paper runs LA on Kinetics (N ~ 240k videos, 400 classes) with
K = 6000 clusters, m = 3 clusterings and k = 4096 background neighbours (Sec. 4.2;
the authors' code). Two properties of that setting are what the loss relies on, and
they do not survive a naive rescaling to small N:

- **clusters much finer than classes**: ~40 videos per cluster, 15 clusters per class;
- **a close set of a few percent of the background**: a video's close neighbours (the
  union of its m clusters, at most m x 40 = 120 videos) are ~3 % of its 4096 background
  neighbours, so the loss separates a small group from many others.

Keeping only K/N = 1/40 at N = 210 gives K = 5 clusters of 42 videos for 8 classes, and
k = 64 then makes most of every background set "close". The rule here keeps the two
properties instead:

1. ``k = min(N, 4096)``: the paper's background size where the bank is larger; at small N
   the whole bank, so that the background reaches beyond the video's own visual
   neighbourhood (a top-64 background of 210 videos is mostly the video's own scene);
2. cluster size ``s = max(min_cluster_size, round(close_fraction * k / m))`` with
   ``close_fraction = 0.03`` (the paper's 120 / 4096 = 2.9 %), at least 4 videos so that a
   cluster is a group and not an instance (K = N is IR again);
3. ``K = round(N / s)``, between 2 and N.

At Kinetics' N = 240k this gives k = 4096, s = 41, K = 5854 (the paper: 6000); at the
benchmark dataset's 1,200 videos k = 1200, s = 12, K = 100 (12 per class of 8; close
set ~3 %); at the small dataset's 210 videos k = 210, s = 4, K = 52 (close ~6 %: the
minimum cluster size dominates).
"""
from __future__ import annotations

from dataclasses import dataclass

from vidssl.errors import ConfigError

PAPER_BACKGROUND = 4096  # k of the authors' code
PAPER_CLOSE_FRACTION = 0.03  # m x (videos per cluster) / k on Kinetics: 3 x 40 / 4096
MIN_CLUSTER_SIZE = 4


@dataclass(frozen=True)
class LARegime:
    num_clusters: int  # K
    background_neighbors: int  # k
    cluster_size: int  # s, the videos per cluster the rule aims at

    def close_fraction(self, num_clusterings: int) -> float:
        """Upper bound of the close set's share of the background: m s / k."""
        return min(1.0, num_clusterings * self.cluster_size / self.background_neighbors)


def la_regime(num_videos: int, num_clusterings: int = 3, *, close_fraction: float = PAPER_CLOSE_FRACTION,
              min_cluster_size: int = MIN_CLUSTER_SIZE, max_background: int = PAPER_BACKGROUND) -> LARegime:
    """K, k and the cluster size for ``num_videos`` training videos (see the module docstring)."""
    if num_videos < 2:
        raise ConfigError(f"LA needs at least 2 training videos, got {num_videos}")
    if num_clusterings < 1 or not 0 < close_fraction <= 1 or min_cluster_size < 1 or max_background < 1:
        raise ConfigError("la_regime: num_clusterings, min_cluster_size and max_background must be >= 1 and "
                          f"close_fraction in (0, 1] (got {num_clusterings}, {min_cluster_size}, {max_background}, "
                          f"{close_fraction})")
    k = min(num_videos, max_background)
    size = max(min_cluster_size, int(round(close_fraction * k / num_clusterings)))
    clusters = max(2, min(num_videos, int(round(num_videos / size))))
    return LARegime(num_clusters=clusters, background_neighbors=k, cluster_size=size)
