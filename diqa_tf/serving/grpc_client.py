"""gRPC client: TF Serving's PredictionService (Predict, GetModelMetadata), port 8500."""

import tensorflow as tf

from diqa_tf.export.warmup import serving_protos
from diqa_tf.serving.base import (
    INPUT_KEY,
    OUTPUT_KEY,
    RemoteScorer,
    RequestRejected,
    ServerError,
    Unavailable,
)
from diqa_tf.errors import tf_gist


def _grpc_modules():
    """grpc and the PredictionService stub, imported only when a gRPC client is made."""
    serving_protos()  # the clear "pip install diqa-tf[serving]" error if missing
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    return grpc, prediction_service_pb2_grpc


class GrpcClient(RemoteScorer):
    """Scores images on TF Serving over gRPC (`address` is HOST:PORT, e.g. localhost:8500).

    Every call names the signature explicitly and has a deadline of `timeout`
    seconds. Use it as a context manager, or call close(), to free the channel.
    """

    def __init__(self, address, **options):
        super().__init__(address, **options)
        grpc, service = _grpc_modules()
        self._grpc = grpc
        self._channel = grpc.insecure_channel(address)  # sends are unlimited by default
        self._stub = service.PredictionServiceStub(self._channel)

    def close(self):
        self._channel.close()

    def model_spec(self):
        _, model_pb2, _, _ = serving_protos()
        spec = model_pb2.ModelSpec(name=self.model_name, signature_name=self.signature)
        if self.version:
            spec.version.value = self.version
        return spec

    def request(self, contents):
        """The PredictRequest for a list of encoded images (string tensor [N])."""
        _, _, predict_pb2, _ = serving_protos()
        request = predict_pb2.PredictRequest(model_spec=self.model_spec())
        request.inputs[INPUT_KEY].CopyFrom(tf.make_tensor_proto(list(contents), tf.string))
        request.output_filter.append(OUTPUT_KEY)
        return request

    def metadata(self):
        """The model's SignatureDefMap, from GetModelMetadata."""
        get_model_metadata_pb2, _, _, _ = serving_protos()
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=self.model_spec())
        request.model_spec.ClearField("signature_name")
        request.metadata_field.append("signature_def")
        response = self._call(self._stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return signatures.signature_def

    def _signatures(self):
        return {
            name: (set(signature.inputs), set(signature.outputs))
            for name, signature in self.metadata().items()
        }

    def _predict(self, contents):
        response = self._call(self._stub.Predict, self.request(contents))
        return tf.make_ndarray(response.outputs[OUTPUT_KEY]).reshape(-1)

    def _call(self, method, request):
        """One RPC with the deadline; gRPC status codes -> our exceptions."""
        codes = self._grpc.StatusCode
        try:
            return method(request, timeout=self.timeout)
        except self._grpc.RpcError as e:
            code, details = e.code(), (e.details() or "").strip()
            if code == codes.UNAVAILABLE:
                raise Unavailable(details.splitlines()[0] if details else "unavailable") from None
            reason = tf_gist(details, "refused by the server")
            if code == codes.INVALID_ARGUMENT:
                raise RequestRejected(reason) from None
            if code == codes.DEADLINE_EXCEEDED:
                raise self.timed_out() from None
            raise ServerError(
                f"{self.address}: {code.name} for {self.model_label}: {reason}"
            ) from None
