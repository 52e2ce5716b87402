"""Per-request tensors of one Triton execution -> one batch per tensor name."""

from __future__ import annotations

import numpy as np
from servewatch.instrumentation.triton.tensors import merge_requests, rows


def test_batched_requests_are_concatenated_along_their_batch_dimension() -> None:
    a, b = np.ones((3, 4)), np.zeros((2, 4))
    merged = merge_requests([{"x": a, "t": np.arange(3)}, {"x": b, "t": np.arange(2)}], batched=True)
    assert merged["x"].shape == (5, 4) and merged["t"].tolist() == [0, 1, 2, 0, 1]
    assert rows(merged) == 5


def test_a_single_batched_request_is_passed_through_without_a_copy() -> None:
    a = np.ones((3, 4))
    assert merge_requests([{"x": a}], batched=True)["x"] is a


def test_requests_of_a_model_without_batching_are_stacked() -> None:
    merged = merge_requests([{"x": np.ones(4)}, {"x": np.zeros(4)}, {"x": np.ones(4)}], batched=False)
    assert merged["x"].shape == (3, 4) and rows(merged) == 3
    assert merge_requests([{"x": np.ones(4)}], batched=False)["x"].shape == (1, 4)


def test_tensors_that_do_not_line_up_are_left_out() -> None:
    merged = merge_requests([{"x": np.ones((1, 4)), "y": np.ones((1, 2))}, {"x": np.ones((1, 5))}], batched=True)
    assert merged == {}
    assert merge_requests([{"x": np.ones(4)}, {"x": np.ones(3)}], batched=False) == {}
    assert merge_requests([], batched=True) == {} and rows({}) is None
