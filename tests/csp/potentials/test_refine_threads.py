"""Refinement on the CPU runs torch on ``RefineSettings.cpu_threads`` threads and restores torch's setting."""

import torch

from csp.potentials.refine import RefineSettings, _torch_threads


def test_torch_threads_are_set_inside_and_restored():
    before = torch.get_num_threads()
    with _torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with _torch_threads(None):
        assert torch.get_num_threads() == before
    assert RefineSettings().cpu_threads == 1
