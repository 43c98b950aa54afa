"""Clients for a DIQA SavedModel served by TF Serving: gRPC and REST.

Both score image files like `diqa_tf.inference.Scorer.score_files`: the server
decodes and normalizes (the `serving_default` signature), the client only reads
bytes, batches them and reports errors per file. The gRPC client needs the
`[serving]` extra (tensorflow-serving-api); the REST client only the standard library.
"""

from diqa_tf.serving.base import RemoteScorer, RequestRejected, ServerError
from diqa_tf.serving.grpc_client import GrpcClient
from diqa_tf.serving.rest_client import RestClient

__all__ = ["GrpcClient", "RemoteScorer", "RequestRejected", "RestClient", "ServerError"]
