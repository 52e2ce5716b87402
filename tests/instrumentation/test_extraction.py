"""Feature extraction: every accepted form, the projections and their thresholds, spec-driven naming."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from servewatch.instrumentation.extraction import (
    COLUMNS,
    DENSE,
    OBJECTS,
    ROWS,
    TENSORS,
    Extractor,
    Unsupported,
    combine,
)
from servewatch.instrumentation.projections import MAX_PIXELS

from servewatch.batch import split_columns
from servewatch.spec import parse_spec

inputs = Extractor("input", (), max_columns=8)
predictions = Extractor("prediction", (), max_columns=8)


def columns_of(extractor: Extractor, value: object) -> dict[str, object]:
    """What the profile would see: the batch, prepared and split into named columns."""
    kind, data, rows, _ = extractor.extract(value)
    return split_columns(extractor.prepare(kind, data), extractor.columns, max_columns=extractor.max_columns)


def test_numeric_arrays_are_dense_rows_named_by_position() -> None:
    kind, data, rows, width = inputs.extract(np.ones((5, 3)))
    assert (kind, rows, width) == (DENSE, 5, 3)
    assert inputs.extract(np.arange(4))[0::2] == (DENSE, 4)            # 1-D: one column of 4 rows
    assert list(columns_of(inputs, np.arange(6).reshape(3, 2))) == ["f0", "f1"]
    assert inputs.extract(np.float32(2.5))[2] == 1                    # a scalar is one row
    assert inputs.extract(np.empty((0, 3))) is None                    # nothing to profile


def test_wide_arrays_become_norm_and_mean_or_length() -> None:
    embeddings = np.random.default_rng(0).normal(size=(4, 9))          # 9 > max_columns 8
    cols = columns_of(inputs, embeddings)
    assert set(cols) == {"norm", "mean"}
    np.testing.assert_allclose(cols["norm"], np.linalg.norm(embeddings, axis=1))
    np.testing.assert_allclose(cols["mean"], embeddings.mean(axis=1))
    token_ids = np.array([[101, 7, 9, 102, 0, 0, 0, 0, 0, 0], [101, 5, 102, 0, 0, 0, 0, 0, 0, 0]])
    assert columns_of(inputs, token_ids)["length"].tolist() == [4.0, 3.0]
    assert set(columns_of(inputs, np.ones((2, 8)))) == {f"f{i}" for i in range(8)}   # exactly max: columns


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_images_become_per_channel_mean_and_std(layout: str) -> None:
    rng = np.random.default_rng(1)
    images = rng.random((2, 3, 16, 16)).astype(np.float32)
    images[:, 1] += 10.0                                               # channel 1 is brighter
    value = images if layout == "nchw" else images.transpose(0, 2, 3, 1)
    cols = columns_of(inputs, value)
    assert set(cols) == {f"mean.{c}" for c in range(3)} | {f"std.{c}" for c in range(3)}
    np.testing.assert_allclose(cols["mean.1"], images[:, 1].mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(cols["std.2"], images[:, 2].std(axis=(1, 2)), rtol=1e-5)
    grey = columns_of(inputs, rng.random((3, 10, 10)))                 # no channel axis: per-sample mean/std
    assert set(grey) == {"mean", "std"}


def test_big_images_are_read_on_a_bounded_grid_and_estimates_stay_close() -> None:
    rng = np.random.default_rng(2)
    images = (rng.random((2, 3, 224, 224)) * 255).astype(np.uint8)
    from servewatch.instrumentation.projections import subsample

    assert subsample(images)[0, 0].size <= MAX_PIXELS
    cols = columns_of(inputs, images)
    exact = images.astype(np.float64).mean(axis=(2, 3))
    np.testing.assert_allclose(np.stack([cols[f"mean.{c}"] for c in range(3)], axis=1), exact, rtol=0.02)


def test_strings_are_text_or_categories() -> None:
    cols = columns_of(inputs, ["the quick brown fox", "hello"])
    assert cols["chars"].tolist() == [19.0, 5.0] and cols["tokens"].tolist() == [4.0, 1.0]
    short = inputs.extract(["DE", "US", "DE"])
    assert short[0] == OBJECTS and list(columns_of(inputs, ["DE", "US"])) == ["f0"]
    assert set(columns_of(inputs, "one single sentence here")) == {"chars", "tokens"}
    assert columns_of(inputs, b"\x00" * 10)["bytes"].tolist() == [10.0]


def test_dict_rows_keep_fields_and_project_prose_fields() -> None:
    rows = [{"amount": 3.5, "country": "DE", "review": "works as expected, would buy again"},
            {"amount": None, "country": "US", "review": "no"}]
    kind, data, count, _ = inputs.extract(rows)
    assert (kind, count) == (ROWS, 2)
    cols = columns_of(inputs, rows)
    assert set(cols) == {"amount", "country", "review.chars", "review.tokens"}
    assert cols["review.tokens"].tolist() == [6.0, 1.0]
    assert inputs.extract({"amount": 1.0, "country": "FR"})[0::2] == (ROWS, 1)   # a dict of scalars: one row


def test_named_tensors_dataframes_and_series() -> None:
    value = {"x": np.ones((3, 2)), "text": ["a b c", "d", "e f"], "temperature": 0.7}   # scalars are parameters
    cols = columns_of(inputs, value)
    assert set(cols) == {"x.0", "x.1", "text.chars", "text.tokens"}
    frame = pd.DataFrame({"amount": [1.0, 2.0], "country": ["DE", "FR"]})
    assert inputs.extract(frame)[0] == COLUMNS
    assert set(columns_of(inputs, frame)) == {"amount", "country"}
    assert columns_of(inputs, pd.Series([1.0, 2.0, 3.0]))["f0"].tolist() == [1.0, 2.0, 3.0]


def test_lists_of_arrays_and_per_request_tensors() -> None:
    samples = [np.ones(3), np.zeros(3)]                                # one array per sample: stacked
    assert inputs.extract(samples)[0::2] == (DENSE, 2)
    single_rows = [np.ones((1, 3)), np.zeros((1, 3)), np.ones((1, 3))]  # per-request batches of one row
    assert inputs.extract(single_rows)[2] == 3
    ragged = [np.ones((2, 3)), np.zeros((1, 3))]                        # per-request batches: concatenated
    assert inputs.extract(ragged)[2] == 3
    requests = [{"x": np.ones((1, 4))}, {"x": np.zeros((2, 4))}]        # PyTriton-style requests
    kind, data, rows, _ = inputs.extract(requests)
    assert (kind, rows) == (TENSORS, 3) and data["x"].shape == (3, 4)
    requests = [{"x": np.ones((1, 4)), "ids": np.ones((1, 2), dtype=int)},
                {"x": np.zeros((2, 4)), "ids": np.ones((2, 2), dtype=int)}]
    kind, data, rows, _ = inputs.extract(requests)                    # not all float: the general path
    assert (kind, rows) == (COLUMNS, 3) and data["x"].shape == (3, 4)
    with pytest.raises(Unsupported):
        inputs.extract([np.ones((2, 3)), np.ones((2, 4))])


def test_per_request_tensors_concatenate_along_their_batch_dimension() -> None:
    first, second = np.arange(12.0).reshape(3, 4), -np.arange(12.0).reshape(3, 4)
    kind, data, rows, signature = inputs.extract([{"x": first}, {"x": second}])     # two requests of 3 rows
    assert (kind, rows, signature) == (TENSORS, 6, (("x", 4),))
    np.testing.assert_array_equal(data["x"], np.concatenate([first, second]))
    assert set(columns_of(inputs, [{"x": first}, {"x": second}])) == {f"x.{i}" for i in range(4)}  # not an image
    images = [{"image": np.ones((2, 3, 8, 8))}, {"image": np.zeros((2, 3, 8, 8))}]
    assert columns_of(inputs, images)["image.mean.0"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert inputs.extract([{"x": first}])[2] == 3                                  # one request of 3 rows
    samples = [{"x": np.ones(4)}, {"x": np.zeros(4)}]                              # no batch dimension: one row each
    assert inputs.extract(samples)[2] == 2
    with pytest.raises(Unsupported, match="different shapes"):
        inputs.extract([{"x": np.ones((2, 3))}, {"x": np.ones((2, 4))}])


def test_named_float_tensors_take_the_short_path_and_name_columns_as_before() -> None:
    value = {"INPUT": np.arange(8.0, dtype=np.float32).reshape(4, 2), "extra": np.ones((4, 1))}
    kind, data, rows, signature = inputs.extract(value)
    assert (kind, rows, signature) == (TENSORS, 4, (("INPUT", 2), ("extra", 1)))
    assert data["INPUT"] is value["INPUT"]                                       # read, not copied (the buffer copies)
    cols = columns_of(inputs, value)
    assert list(cols) == ["INPUT.0", "INPUT.1", "extra.0"] and cols["INPUT.1"].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert inputs.extract({1: np.ones((2, 2))})[3] == (("1", 2),)                 # keys are names
    assert predictions.extract({"OUTPUT": np.ones((3, 1))})[0] == TENSORS
    probabilities = {"OUTPUT": np.array([[0.2, 0.8], [0.6, 0.4]])}               # 2 scores: projected as before
    assert predictions.extract(probabilities)[0] == COLUMNS
    assert columns_of(predictions, probabilities)["OUTPUT.class"].tolist() == ["1", "0"]
    for general in ({"x": np.ones((2, 2)), "y": np.ones((3, 2))},                 # rows differ
                    {"x": np.ones((2, 9))},                                     # wider than max_columns: projected
                    {"x": np.ones((2, 2), dtype=np.int64)},                     # integers
                    {"x": np.ones((0, 2))}):                                    # empty
        assert inputs.extract(general) is None or inputs.extract(general)[0] != TENSORS


def test_torch_tensors_are_read_by_type_in_place() -> None:
    torch = pytest.importorskip("torch")
    from servewatch.instrumentation import extraction

    tensor = torch.rand((4, 3))
    kind, data, rows, width = inputs.extract(tensor)
    assert (kind, rows, width) == (DENSE, 4, 3) and np.shares_memory(data, tensor.numpy())
    assert extraction._READERS[torch.Tensor] is Extractor._tensor
    parameter = torch.nn.Parameter(torch.ones((2, 3)))                        # a subclass, needing grad: detached
    assert inputs.extract(parameter)[0::2] == (DENSE, 2) and extraction._READERS[type(parameter)] is Extractor._tensor
    kind, data, rows, _ = inputs.extract([{"x": torch.ones((1, 2))}, {"x": torch.zeros((2, 2))}])
    assert (kind, rows) == (TENSORS, 3)


class Tensor:
    """A stand-in for a torch tensor (module ``torch``) that records every attribute it is asked for and lacks."""

    __module__ = "torch"
    ndim, is_cpu, requires_grad = 2, True, False

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.probed: list[str] = []

    def __getattr__(self, name: str) -> object:
        self.probed.append(name)
        raise AttributeError(name)

    def detach(self) -> Tensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.array


def test_tensors_are_recognised_by_their_type_without_probing_them() -> None:
    tensor = Tensor(np.ones((2, 3)))
    assert inputs.extract(tensor)[0::2] == (DENSE, 2) and predictions.extract(Tensor(np.ones((2, 1))))[2] == 2
    assert tensor.probed == []                       # no DataFrame / pydantic / array-protocol probes per call


def test_predictions_probabilities_logits_labels_and_regression() -> None:
    probabilities = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    cols = columns_of(predictions, probabilities)
    assert cols["class"].tolist() == ["1", "0"] and cols["score"].tolist() == [0.7, 0.6]
    logits = np.arange(20.0).reshape(2, 10)                            # wider than max_columns: top class
    assert columns_of(predictions, logits)["class"].tolist() == ["9", "9"]
    assert columns_of(predictions, np.array([3, 1, 3]))["class"].tolist() == ["3", "1", "3"]
    assert columns_of(predictions, np.array([True, False]))["class"].tolist() == ["true", "false"]
    assert columns_of(predictions, ["cat", "dog"])["class"].tolist() == ["cat", "dog"]
    regression = np.array([[1.5, 20.0], [2.5, 10.0]])                  # not probabilities, narrow: the values
    assert set(columns_of(predictions, regression)) == {"f0", "f1"}
    assert columns_of(predictions, np.array([0.25, 0.75]))["f0"].tolist() == [0.25, 0.75]


def test_spec_sources_pick_raw_columns_and_keys_can_ask_for_projections() -> None:
    spec = parse_spec({"models": [{"name": "m", "features": [{"name": "b", "source": {"index": 9}}],
                                   "predictions": [{"name": "label", "type": "categorical",
                                                    "source": {"key": "class"}},
                                                   {"name": "confidence", "source": {"key": "score"}}]}]})
    model = spec.model("m")
    wide = Extractor("input", model.features, max_columns=8)
    table = np.arange(24.0).reshape(2, 12)
    cols = columns_of(wide, table)                                     # 12 > max_columns, but the spec picks
    assert list(cols) == ["b"] and cols["b"].tolist() == [9.0, 21.0]
    named = Extractor("prediction", model.predictions, max_columns=8)
    cols = columns_of(named, np.array([[0.2, 0.8], [0.9, 0.1]]))
    assert cols["label"].tolist() == ["1", "0"] and cols["confidence"].tolist() == [0.8, 0.9]


def test_torch_tensors_including_bfloat16_and_grad() -> None:
    torch = pytest.importorskip("torch")
    x = torch.ones((4, 3), requires_grad=True) * 2
    assert inputs.extract(x)[0::2] == (DENSE, 4)
    cols = columns_of(inputs, torch.zeros((2, 3), dtype=torch.bfloat16))
    assert cols["f0"].tolist() == [0.0, 0.0]
    images = torch.rand((2, 3, 200, 200))
    assert set(columns_of(inputs, images)) == {f"{s}.{c}" for s in ("mean", "std") for c in range(3)}
    assert columns_of(predictions, torch.tensor([[0.1, 0.9]]))["class"].tolist() == ["1"]


def test_pydantic_models_and_dataclasses_are_read_by_their_fields() -> None:
    import dataclasses

    pydantic = pytest.importorskip("pydantic")

    class Transaction(pydantic.BaseModel):
        amount: float
        country: str

    class Batch(pydantic.BaseModel):
        amount: list[float]
        note: str = "v1"

    @dataclasses.dataclass
    class Row:
        amount: float
        age: int

    assert inputs.extract(Transaction(amount=3.5, country="DE"))[0::2] == (ROWS, 1)
    assert columns_of(inputs, Batch(amount=[1.0, 2.0]))["amount"].tolist() == [1.0, 2.0]
    assert set(columns_of(inputs, Row(1.0, 30))) == {"amount", "age"}
    cols = columns_of(inputs, [Transaction(amount=1.0, country="DE"), Transaction(amount=2.0, country="FR")])
    assert list(cols["amount"]) == [1.0, 2.0] and list(cols["country"]) == ["DE", "FR"]
    assert list(columns_of(inputs, [Row(1.0, 30), Row(2.0, 40)])["age"]) == [30, 40]


def test_unexpected_types_are_refused_clearly() -> None:
    with pytest.raises(Unsupported, match="object"):
        inputs.extract(object())
    with pytest.raises(Unsupported, match="complex"):
        inputs.extract(np.ones((2, 2), dtype=complex))


def test_combine_joins_batches_of_one_kind() -> None:
    assert combine(ROWS, [[{"a": 1}], [{"a": 2}]]) == [{"a": 1}, {"a": 2}]
    joined = combine(COLUMNS, [{"a": np.ones(2), "b": ["x", "y"]}, {"a": np.zeros(1), "b": ["z"]}])
    assert joined["a"].tolist() == [1.0, 1.0, 0.0] and joined["b"] == ["x", "y", "z"]


def test_extraction_never_imports_torch_for_other_values() -> None:
    code = ("import sys, numpy as np\n"
            "from servewatch.instrumentation.extraction import Extractor\n"
            "e = Extractor('input')\n"
            "[e.extract(v) for v in (np.ones((2, 2)), [{'a': 1}], 'text here', {'x': [1.0, 2.0]})]\n"
            "import servewatch.instrumentation\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'ray', 'tritonclient', 'pynvml')]\n")
    subprocess.run([sys.executable, "-c", code], check=True)
