"""Toy batched potentials a relaxation server can load by ``module:factory`` name (tests only)."""

from __future__ import annotations

import time

import torch

from csp.potentials.batched import Batch


class VolumeSpring:
    """E = k (V - V0)^2 per structure (eV), no forces: only the cell relaxes; NaN below ``nan_below``
    A^3/atom; each call sleeps ``pause_s`` (a slow potential, for tests that kill the server mid-run)."""

    name = "volume-spring"

    def __init__(self, device: str = "cpu", v0_per_atom: float = 12.0, k: float = 0.01, nan_below: float = 2.0,
                 pause_s: float = 0.0) -> None:  # fmt: skip
        self.device = device
        self.v0, self.k, self.nan_below, self.pause_s = v0_per_atom, k, nan_below, pause_s

    def energies_forces_stresses(self, batch: Batch):
        if self.pause_s:
            time.sleep(self.pause_s)
        n = torch.as_tensor(batch.sizes, dtype=torch.float64)
        volume = torch.abs(torch.linalg.det(batch.cell))
        target = self.v0 * n
        energy = self.k * (volume - target) ** 2
        stress = (2 * self.k * (volume - target))[:, None, None] * torch.eye(3, dtype=torch.float64)
        energy = torch.where(volume / n < self.nan_below, torch.nan, energy)
        return energy, torch.zeros_like(batch.positions), stress


def spring(device: str) -> VolumeSpring:
    return VolumeSpring(device)


def slow_spring(device: str) -> VolumeSpring:
    return VolumeSpring(device, pause_s=0.2)
