"""Hand computations shared by the class-head (aux_weight) tests of the text families."""

from __future__ import annotations

import numpy as np


def softplus(x):
    return np.logaddexp(0.0, x)


def cross_entropy(class_logits, labels):
    c = np.asarray(class_logits, np.float64)
    return np.mean(np.log(np.exp(c).sum(1)) - c[np.arange(len(labels)), labels])


class Recorder:
    """Stands in for `apply_update`: records each player's loss and changes no weight."""

    def __init__(self):
        self.losses = []

    def __call__(self, optimizer, tape, loss, variables):
        self.losses.append(float(loss))
