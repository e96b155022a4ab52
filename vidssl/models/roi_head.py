"""The action-detection head of the large-scale study's AVA evaluation (App. B.3, after SlowFast).

"Region-of-interest (RoI) features are extracted at the last feature map of res5 by extending
a 2D proposal at a frame into a 3D RoI by replicating it along the temporal axis, followed by
application of frame-wise RoIAlign and temporal global average pooling. [...] The RoI
features are then max-pooled and fed to a per-class sigmoid classifier."

:class:`RoIHead`: ``fmap [N, C, T, H, W]`` (the conv5 map of a clip centred on the keyframe;
:func:`vidssl.models.dilation.dilate_conv5` gives it stride 16) and boxes ``[R, 4]`` normalised
to the frame, each with the index of its clip ``[R]`` -> logits ``[R, K]``:

1. the box replicated over the T frames and RoIAligned per frame, then averaged over T. RoIAlign
   is linear in the map, so averaging the map over T first and aligning once is the same (and
   T times cheaper): that is what is computed (and what SlowFast's head does, an AvgPool3d
   over T before its RoIAlign);
2. RoIAlign (:func:`vidssl.models.roi_align.roi_align`) at ``resolution x resolution`` (7),
   ``aligned=True``, adaptive sampling (``sampling_ratio=0``): SlowFast's ``ResNetRoIHead``
   with Detectron2's layer. Boxes are scaled by the map size (``x * W``, ``y * H``), i.e. the
   ``spatial_scale`` 1/16 of a 16-stride map of an input whose size is a multiple of 16;
3. max pooling over the ``resolution x resolution`` bins -> ``[R, C]``;
4. standardisation of each channel (BatchNorm without affine parameters; our addition: frozen
   encoders, random-init ones above all, give features of any scale, and the linear probe
   standardises for the same reason), dropout (0.5, SlowFast's AVA recipe), a linear layer.

Scores are ``sigmoid(logits)`` per class, trained with binary cross-entropy.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from vidssl.models.roi_align import roi_align


class RoIHead(nn.Module):
    """fmap [N, C, T, H, W] (or [N, C, H, W], already averaged over T), boxes [R, 4] in [0, 1],
    clip index [R] -> logits [R, num_classes]."""

    def __init__(self, in_channels: int, num_classes: int, resolution: int = 7, dropout: float = 0.5,
                 sampling_ratio: int = 0, aligned: bool = True):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"RoIHead: dropout must be in [0, 1), got {dropout}")
        self.resolution, self.sampling_ratio, self.aligned = int(resolution), int(sampling_ratio), bool(aligned)
        self.norm = nn.BatchNorm1d(in_channels, affine=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def pool(self, fmap: torch.Tensor, boxes: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """RoI features [R, C]: temporal mean, RoIAlign, spatial max (steps 1-3)."""
        if fmap.dim() == 5:
            fmap = fmap.mean(2)  # = the mean of the frame-wise RoIAligns (linearity)
        h, w = fmap.shape[-2:]
        scale = boxes.new_tensor([w, h, w, h])
        rois = torch.cat([index.to(boxes.dtype)[:, None], boxes * scale], dim=1)
        aligned = roi_align(fmap.float(), rois.float(), self.resolution, 1.0, self.sampling_ratio, self.aligned)
        return aligned.amax(dim=(2, 3))

    def forward(self, fmap: torch.Tensor, boxes: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.norm(self.pool(fmap, boxes, index))))
