"""REST client: TF Serving's HTTP API (port 8501), standard library only.

Predict is `POST /v1/models/NAME[/versions/N]:predict` with
`{"signature_name": ..., "instances": [{"b64": ...}, ...]}` (the "b64" object is how
TF Serving's JSON carries binary strings); metadata is `GET .../metadata`.
"""

import base64
import json
import socket
import urllib.error
import urllib.request

from diqa_tf.serving.base import (
    OUTPUT_KEY,
    RemoteScorer,
    RequestRejected,
    ServerError,
    Unavailable,
)
from diqa_tf.errors import tf_gist


class RestClient(RemoteScorer):
    """Scores images on TF Serving over HTTP (`address` is a URL, e.g. http://localhost:8501;
    HOST:PORT alone means http://HOST:PORT)."""

    def __init__(self, address, **options):
        if "://" not in address:
            address = f"http://{address}"
        super().__init__(address.rstrip("/"), **options)

    @property
    def model_url(self):
        version = f"/versions/{self.version}" if self.version else ""
        return f"{self.address}/v1/models/{self.model_name}{version}"

    def body(self, contents):
        """The JSON body of a predict request for a list of encoded images."""
        instances = [{"b64": base64.b64encode(c).decode("ascii")} for c in contents]
        return {"signature_name": self.signature, "instances": instances}

    def metadata(self):
        """The model's signatures as TF Serving's JSON gives them ({name: SignatureDef})."""
        answer = self._call(urllib.request.Request(f"{self.model_url}/metadata"))
        return answer.get("metadata", {}).get("signature_def", {}).get("signature_def", {})

    def _signatures(self):
        return {
            name: (set(signature.get("inputs", {})), set(signature.get("outputs", {})))
            for name, signature in self.metadata().items()
        }

    def _predict(self, contents):
        request = urllib.request.Request(
            f"{self.model_url}:predict",
            data=json.dumps(self.body(contents)).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        predictions = self._call(request).get("predictions")
        if not isinstance(predictions, list):
            raise ServerError(f"{self.address}: answer holds no `predictions` list")
        # One output gives plain values; several give one object per instance.
        return [p[OUTPUT_KEY] if isinstance(p, dict) else p for p in predictions]

    def _call(self, request):
        """One HTTP exchange with the timeout; HTTP failures -> our exceptions."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as e:
            reason = tf_gist(_error_text(e), "refused by the server")
            if e.code == 400:
                raise RequestRejected(reason) from None
            if e.code == 503:
                raise Unavailable(f"HTTP 503: {reason}") from None
            raise ServerError(
                f"{request.full_url}: HTTP {e.code} for {self.model_label}: {reason}"
            ) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise self.timed_out() from None
            raise Unavailable(str(e.reason)) from None
        except (TimeoutError, socket.timeout):
            raise self.timed_out() from None
        except ConnectionError as e:
            raise Unavailable(str(e)) from None
        except json.JSONDecodeError:
            raise ServerError(f"{request.full_url}: the answer is not JSON") from None


def _error_text(http_error):
    """TF Serving's {"error": "..."} text, or the HTTP reason."""
    try:
        return json.loads(http_error.read()).get("error") or http_error.reason
    except (ValueError, AttributeError, OSError):
        return str(http_error.reason)
