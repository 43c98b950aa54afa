"""In-process stand-ins for TF Serving, for the client tests (test fixtures, not products).

Both run a loaded SavedModel's signatures the way TF Serving does: a gRPC
PredictionService (Predict, GetModelMetadata) and the REST API's predict and
metadata routes. TF errors become INVALID_ARGUMENT / HTTP 400 with TF's message,
as TF Serving's do. `fail_first` answers the first N calls with UNAVAILABLE (or
HTTP 503), to test retries.
"""

import base64
import contextlib
import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)


class ServedModel:
    """A SavedModel version folder, loaded, with its SignatureDefs, and call counters."""

    def __init__(self, export_dir, name="diqa", version=1, fail_first=0):
        self.name, self.version = name, version
        self.loaded = tf.saved_model.load(str(export_dir))
        saved = saved_model_pb2.SavedModel.FromString(
            (Path(export_dir) / "saved_model.pb").read_bytes()
        )
        self.signature_defs = saved.meta_graphs[0].signature_def
        self._lock = threading.Lock()
        self.reset(fail_first)

    def reset(self, fail_first=0):
        """Zero the call counters; the next `fail_first` calls get UNAVAILABLE."""
        self.fail_first = fail_first
        self.calls = {"predict": 0, "metadata": 0}

    def count(self, kind):
        """Count a call; True if it must fail with UNAVAILABLE."""
        with self._lock:
            self.calls[kind] += 1
            return sum(self.calls.values()) <= self.fail_first

    def run(self, signature_name, inputs):
        """Outputs (numpy) of a signature; KeyError for an unknown one; TF errors raise."""
        function = self.loaded.signatures[signature_name or "serving_default"]
        outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def metadata_map(self):
        return get_model_metadata_pb2.SignatureDefMap(signature_def=self.signature_defs)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, served):
        self.served = served

    def _check(self, request, context, kind):
        if self.served.count(kind):
            context.abort(grpc.StatusCode.UNAVAILABLE, "server is starting")
        spec = request.model_spec
        if spec.name != self.served.name or (
            spec.HasField("version") and spec.version.value != self.served.version
        ):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")

    def Predict(self, request, context):
        self._check(request, context, "predict")
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        try:
            outputs = self.served.run(request.model_spec.signature_name, inputs)
        except KeyError as e:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"Serving signature {e} not found")
        except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, getattr(e, "message", str(e)))
        response = predict_pb2.PredictResponse(model_spec=request.model_spec)
        response.model_spec.version.value = self.served.version
        for key in request.output_filter or outputs:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    def GetModelMetadata(self, request, context):
        self._check(request, context, "metadata")
        response = get_model_metadata_pb2.GetModelMetadataResponse(
            model_spec=request.model_spec
        )
        response.model_spec.version.value = self.served.version
        response.metadata["signature_def"].Pack(self.served.metadata_map())
        return response


@contextlib.contextmanager
def grpc_server(served):
    """A PredictionService on a free local port; yields its HOST:PORT."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _PredictionService(served), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


class _RestHandler(BaseHTTPRequestHandler):
    served = None  # set on a subclass per server

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, suffix):
        """True if the path is /v1/models/NAME[/versions/N]SUFFIX for our model."""
        served = self.served
        return self.path in (
            f"/v1/models/{served.name}{suffix}",
            f"/v1/models/{served.name}/versions/{served.version}{suffix}",
        )

    def do_GET(self):
        if not self._route("/metadata"):
            return self._answer(404, {"error": f"Servable not found: {self.path}"})
        if self.served.count("metadata"):
            return self._answer(503, {"error": "server is starting"})
        metadata = json_format.MessageToDict(
            self.served.metadata_map(), preserving_proto_field_name=True
        )
        self._answer(200, {"model_spec": {"name": self.served.name},
                           "metadata": {"signature_def": metadata}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self._route(":predict"):
            return self._answer(404, {"error": f"Servable not found: {self.path}"})
        if self.served.count("predict"):
            return self._answer(503, {"error": "server is starting"})
        instances = [
            base64.b64decode(i["b64"]) if isinstance(i, dict) else i for i in body["instances"]
        ]
        try:
            outputs = self.served.run(
                body.get("signature_name"), {"image_bytes": np.array(instances, object)}
            )
        except tf.errors.InvalidArgumentError as e:
            return self._answer(400, {"error": e.message})
        # TF Serving's row format: one output gives plain values.
        self._answer(200, {"predictions": outputs["score"].tolist()})


@contextlib.contextmanager
def rest_server(served):
    """A TF Serving-like REST API on a free local port; yields its base URL."""
    handler = type("Handler", (_RestHandler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
