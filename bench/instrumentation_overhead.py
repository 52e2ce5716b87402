"""What ``@monitor`` adds to an inference call, measured side by side with its baselines in one run.

    .venv/bin/python bench/instrumentation_overhead.py [--seconds 1.0]

1. Batch of 1 (20 numeric features in, 1 prediction out): time added per call by the decorator (recorder,
   request statistics, profiling of all 21 values) against
   a. the bare function call - printed as a fraction of a 2 ms model call (target <= 1 %), and
   b. the raw per-row sketch update: 21 ``kll_doubles_sketch.update(value)`` calls, the least any per-row
      profiler must do (target <= 3x).
2. Batch of 64: added time per value against the raw vectorized sketch update of the same values (21
   ``update(column)`` calls of 64 values each; target <= 1.5x).
3. The same batch of 1 in the other forms frameworks hand over: time added per call, against the time added
   for the numpy array of case 1 (each form against its own bare call):
   a. named float tensors ``{"INPUT": (1, 20) float32}`` in, ``{"OUTPUT": (1, 1)}`` out (PyTriton,
      tritonclient);
   b. a torch tensor in and out (TorchServe handlers; skipped without torch), beside the floor of reading two
      tensors at all (two ``Tensor.numpy()`` calls).

Each figure is the best of several rounds that run the candidates in turn (so they share the machine's load);
everything runs in this one process with the runtime started (spool exporter, no metric export, 1 h profile interval so no close falls
inside a timed loop). Amortized costs (sketching the gathered rows every 256 rows) are inside the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable

import datasketches as ds
import numpy as np

FEATURES = 20


def best_per_call(functions: dict[str, Callable[[], object]], seconds: float, repeats: int = 9) -> dict[str, float]:
    """Seconds per call of each function: the best of ``repeats`` rounds; every round runs each function in
    turn for about ``seconds / repeats``, so that all of them see the same machine load."""
    calls: dict[str, int] = {}
    for name, function in functions.items():  # calibrate
        count = 1
        while True:
            start = time.perf_counter()
            for _ in range(count):
                function()
            if time.perf_counter() - start > seconds / repeats / 4:
                break
            count *= 2
        calls[name] = count * 4
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                function()
            best[name] = min(best[name], (time.perf_counter() - start) / calls[name])
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement (default 1.0)")
    args = parser.parse_args()
    spool = tempfile.mkdtemp(prefix="servewatch-bench-")
    os.environ.update(SERVEWATCH_SPOOL_DIR=spool, SERVEWATCH_PROFILE_INTERVAL="3600", OTEL_METRICS_EXPORTER="none")
    from servewatch.instrumentation import errors, flush, monitor

    def model(x: np.ndarray) -> np.ndarray:
        return x[:, :1] * 0.5

    def named_model(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"OUTPUT": named_output}

    monitored = monitor("bench")(model)
    named = monitor("bench-named")(named_model)
    rng = np.random.default_rng(7)
    one = rng.random((1, FEATURES))
    batch = rng.random((64, FEATURES))
    named_input = {"INPUT": one.astype(np.float32)}
    named_output = (one[:, :1] * 0.5).astype(np.float32)
    monitored(one)  # starts the runtime outside the timed loops
    named(named_input)
    time.sleep(0.5)

    sketches = [ds.kll_doubles_sketch(200) for _ in range(FEATURES + 1)]
    row = one[0].tolist() + [0.5]

    def raw_row() -> None:
        for sketch, value in zip(sketches, row):
            sketch.update(value)

    columns = [np.ascontiguousarray(batch[:, i]) for i in range(FEATURES)] + [np.ascontiguousarray(batch[:, 0] * 0.5)]

    def raw_columns() -> None:
        for sketch, column in zip(sketches, columns):
            sketch.update(column)

    single = best_per_call({"bare": lambda: model(one), "monitored": lambda: monitored(one), "raw": raw_row},
                           args.seconds * 3)
    batched = best_per_call({"bare": lambda: model(batch), "monitored": lambda: monitored(batch),
                             "raw": raw_columns}, args.seconds * 3)
    forms: dict[str, Callable[[], object]] = {
        "numpy bare": lambda: model(one), "numpy": lambda: monitored(one),
        "named bare": lambda: named_model(named_input), "named": lambda: named(named_input)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        def tensor_model(x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * 0.5

        monitored_tensor = monitor("bench-torch")(tensor_model)
        tensor_one = torch.from_numpy(one)
        tensor_one_out = tensor_model(tensor_one)
        monitored_tensor(tensor_one)
        forms.update({"torch bare": lambda: tensor_model(tensor_one), "torch": lambda: monitored_tensor(tensor_one),
                      "Tensor.numpy() x2": lambda: (tensor_one.numpy(), tensor_one_out.numpy())})
    other = best_per_call(forms, args.seconds * 3)
    added = {form: other[form] - other[f"{form} bare"] for form in ("numpy", "named", "torch") if form in other}
    bare_1, monitored_1, raw_1 = single["bare"], single["monitored"], single["raw"]
    bare_64, monitored_64, raw_64 = batched["bare"], batched["monitored"], batched["raw"]
    added_1 = monitored_1 - bare_1
    values_64 = 64 * (FEATURES + 1)
    added_64 = (monitored_64 - bare_64) / values_64
    raw_value = raw_64 / values_64
    print(f"batch of 1, {FEATURES} features + 1 prediction:")
    print(f"  bare call {bare_1 * 1e6:8.2f} us   monitored {monitored_1 * 1e6:8.2f} us   added {added_1 * 1e6:6.2f} us")
    print(f"  added / 2 ms model call          {added_1 / 2e-3:8.3%}   (target <= 1%)")
    print(f"  raw per-row sketch update {raw_1 * 1e6:6.2f} us   added / raw  {added_1 / raw_1:6.2f}x  (target <= 3x)")
    print("batch of 64:")
    print(f"  bare call {bare_64 * 1e6:8.2f} us   monitored {monitored_64 * 1e6:8.2f} us")
    print(f"  added per value {added_64 * 1e9:6.1f} ns   raw vectorized update per value {raw_value * 1e9:6.1f} ns"
          f"   ratio {added_64 / raw_value:5.2f}x  (target <= 1.5x)")
    print("batch of 1 in other forms, time added per call:")
    print(f"  numpy array   {added['numpy'] * 1e6:6.2f} us")
    print(f"  named tensors {added['named'] * 1e6:6.2f} us   / numpy {added['named'] / added['numpy']:5.2f}x")
    if torch is not None:
        print(f"  torch tensor  {added['torch'] * 1e6:6.2f} us   / numpy {added['torch'] / added['numpy']:5.2f}x   "
              f"(reading two tensors at all: {other['Tensor.numpy() x2'] * 1e6:4.2f} us)")
    flush(10)
    if errors.counts():
        print(f"instrumentation errors: {errors.counts()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
