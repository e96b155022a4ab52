"""Instance Recognition against a memory bank: full non-parametric softmax, or NCE.

Video IR (dense-trajectory paper, Sec. 3.1, Eq. 2; VIE Eq. 2-3) treats every video
as its own class; the class weights are the memory-bank entries::

    P(i | v) = exp(v . d_i / tau) / sum_j exp(v . d_j / tau)        tau = 0.07

``softmax_ir_loss`` computes -log P(i | v) exactly (B x N dot products).

``NCEIRLoss`` is the approximation of Wu et al. 2018 used for Kinetics (Sec. 4.2:
"4096 negative samples for approximating the denominator"), as in their code:

- the partition function Z is estimated ONCE, from the first batch, as N times
  the mean of exp(v . d_j / tau) over the noise samples, and kept fixed (about
  2.2456 N for 128-d embeddings at tau 0.07, per the authors' code). It is a
  buffer, so it survives checkpoints; under DDP the estimate is averaged over the
  processes so that all of them use the same Z;
- with P(i|v) = exp(v . d_i / tau) / Z, noise distribution P_n = 1/N and m noise
  samples drawn uniformly (with replacement) from the bank::

    L = -log(P(i|v) / (P(i|v) + m P_n)) - sum_{n=1..m} log(m P_n / (P(n|v) + m P_n))

  averaged over the batch.

The bank entries are constants (no gradient): only the embedding v is learned.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.errors import IRLossError


def _check(embeddings: torch.Tensor, bank: torch.Tensor, index: torch.Tensor, tau: float) -> None:
    if embeddings.dim() != 2 or bank.dim() != 2 or embeddings.shape[1] != bank.shape[1]:
        raise IRLossError(f"IR loss needs embeddings [B, D] and bank [N, D] (got {tuple(embeddings.shape)}, "
                          f"{tuple(bank.shape)})")
    if index.shape != (embeddings.shape[0],):
        raise IRLossError(f"IR loss needs index [B] = [{embeddings.shape[0]}] (got {tuple(index.shape)})")
    if tau <= 0:
        raise IRLossError(f"bad temperature {tau} (> 0)")


def softmax_ir_loss(embeddings: torch.Tensor, bank: torch.Tensor, index: torch.Tensor,
                    temperature: float = 0.07) -> torch.Tensor:
    """Exact non-parametric softmax (Eq. 2): mean over the batch of -log P(index | v).

    embeddings: [B, D] unit rows (with gradient); bank: [N, D] unit rows (constant);
    index: long [B], each video's own row of the bank.
    """
    _check(embeddings, bank, index, temperature)
    logits = embeddings.float() @ bank.detach().float().T / temperature  # [B, N]
    return F.cross_entropy(logits, index.to(logits.device))


def nce_ir_loss(pos_scores: torch.Tensor, noise_scores: torch.Tensor, num_samples: int, log_z: torch.Tensor | float,
                temperature: float = 0.07) -> torch.Tensor:
    """NCE loss from dot products.

    pos_scores: [B] = v . d_i; noise_scores: [B, m] = v . d_n for the m noise samples;
    num_samples: N; log_z: log of the normalising constant Z. Returns the batch mean.
    """
    m = noise_scores.shape[1]
    log_mpn = torch.log(torch.tensor(m / num_samples, dtype=torch.float32, device=pos_scores.device))
    log_p_pos = pos_scores.float() / temperature - log_z  # log P(i|v) [B]
    log_p_noise = noise_scores.float() / temperature - log_z  # [B, m]
    # -log(P / (P + mPn)) = log(1 + mPn / P) = softplus(log mPn - log P)
    loss_pos = F.softplus(log_mpn - log_p_pos)
    # -log(mPn / (P + mPn)) = log(1 + P / mPn) = softplus(log P - log mPn)
    loss_noise = F.softplus(log_p_noise - log_mpn).sum(1)
    return (loss_pos + loss_noise).mean()


class NCEIRLoss(nn.Module):
    """IR with NCE and a once-estimated partition function (Wu et al. 2018, authors' code).

    Args:
        num_samples: N, the bank size.
        noise_samples: m (4096 in the paper).
        temperature: tau (0.07).

    Buffer ``log_z``: log Z, NaN until the first call estimates it.
    """

    def __init__(self, num_samples: int, noise_samples: int = 4096, temperature: float = 0.07):
        super().__init__()
        if noise_samples < 1:
            raise IRLossError(f"bad noise_samples {noise_samples} (>= 1)")
        if temperature <= 0:
            raise IRLossError(f"bad temperature {temperature} (> 0)")
        self.num_samples = num_samples
        self.noise_samples = noise_samples
        self.temperature = temperature
        self.register_buffer("log_z", torch.tensor(float("nan")))
        self._log_z_known = False  # a Python flag, so that steps do not read log_z from the device

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._log_z_known = False  # a loaded log_z may be NaN (a run that had not estimated it yet)

    @property
    def z(self) -> float:
        return float(self.log_z.exp())

    @torch.no_grad()
    def estimate_log_z(self, noise_scores: torch.Tensor) -> torch.Tensor:
        """log(N * mean over batch and noise samples of exp(s / tau)), averaged over DDP processes."""
        from vidssl.distributed import all_reduce_mean

        mean = all_reduce_mean((noise_scores.float() / self.temperature).exp().mean())
        return torch.log(mean * self.num_samples)

    def forward(self, embeddings: torch.Tensor, bank: torch.Tensor, index: torch.Tensor,
                noise_index: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """embeddings: [B, D] (unit); bank: [N, D]; index: long [B].

        noise_index: long [B, m] (drawn uniformly with replacement when not given).
        """
        _check(embeddings, bank, index, self.temperature)
        if bank.shape[0] != self.num_samples:
            raise IRLossError(f"bank has {bank.shape[0]} rows, the NCE loss was built for {self.num_samples}")
        b = embeddings.shape[0]
        if noise_index is None:
            noise_index = torch.randint(0, self.num_samples, (b, self.noise_samples), generator=generator,
                                        device="cpu" if generator is not None else bank.device)
        noise_index = noise_index.to(bank.device)
        bank = bank.detach()
        v = embeddings.float()
        pos = (v * bank.index_select(0, index.to(bank.device)).float()).sum(1)  # [B]
        noise = torch.einsum("bd,bmd->bm", v, bank[noise_index].float())  # [B, m]
        if not self._log_z_known:  # one read of log_z per run (and after a load), not one per step
            if torch.isnan(self.log_z):
                self.log_z.copy_(self.estimate_log_z(noise.detach()))
            self._log_z_known = True
        return nce_ir_loss(pos, noise, self.num_samples, self.log_z, self.temperature)
