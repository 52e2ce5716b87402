"""Write the example's model: a TorchScript churn classifier over three standardised features.

Usage::

    python model.py churn.pt

Three inputs (``tenure``, ``monthly_charges``, ``support_calls``, each scaled to mean 0 and variance 1), two
outputs (the probabilities of "stays" and "churns"). The weights are fixed, so every build scores the same.
"""

from __future__ import annotations

import sys

import torch
from torch import nn


class Churn(nn.Module):
    """A linear layer and a softmax: small enough to serve in well under a millisecond on a CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[0.4, -0.3, -0.8], [-0.4, 0.3, 0.8]]))
            self.linear.bias.copy_(torch.tensor([0.5, -0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=1)


def main(path: str) -> None:
    torch.jit.script(Churn().eval()).save(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python model.py OUTPUT.pt")
    main(sys.argv[1])
