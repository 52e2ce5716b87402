"""The churn model as a Triton python-backend model, watched by servewatch through one base class."""

import sys
from pathlib import Path

import triton_python_backend_utils as pb_utils
from servewatch.instrumentation.triton import MonitoredPythonModel

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # examples/triton: the model app.py serves too
from churn import score  # noqa: E402


class TritonPythonModel(MonitoredPythonModel):
    def execute(self, requests):
        responses = []
        for request in requests:
            features = pb_utils.get_input_tensor_by_name(request, "features").as_numpy()
            try:
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("score", score(features))]))
            except ValueError as error:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error))))
        return responses
