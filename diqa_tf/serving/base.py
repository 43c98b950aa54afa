"""What the gRPC and REST clients share: reading files, batching, retries, errors."""

import logging
import time

import numpy as np

from diqa_tf.data import files
from diqa_tf.errors import DIQAError, InvalidImageError
from diqa_tf.export.saved_model import for_its_file

logger = logging.getLogger(__name__)

INPUT_KEY, OUTPUT_KEY = "image_bytes", "score"
# Requests stay below this many bytes of images (one larger file goes alone): far
# under gRPC's and TF Serving's limits, small enough to resend after a failure.
MAX_REQUEST_BYTES = 32 * 1024 * 1024


class ServerError(DIQAError):
    """The server cannot score anything: unreachable, model missing, too slow."""


class Unavailable(Exception):
    """A transient failure (gRPC UNAVAILABLE, HTTP 503, connection refused): retried."""


class RequestRejected(DIQAError):
    """The server refused a request's images (INVALID_ARGUMENT, HTTP 400)."""


class RemoteScorer:
    """Scores image files on a server; subclasses say how one request is sent.

    Files are read here and sent as encoded bytes, up to `batch_size` files (and
    MAX_REQUEST_BYTES) a request, in order. A request the server refuses
    (INVALID_ARGUMENT) is resent one file at a time, so the one bad file is named
    and the others are still scored. UNAVAILABLE is retried `retries` times, waiting
    `backoff` seconds, then twice that, and so on.
    """

    def __init__(self, address, model_name="diqa", version=None,
                 signature="serving_default", batch_size=8, timeout=30.0,
                 retries=3, backoff=0.5):
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1. Received: {batch_size}")
        self.address = address
        self.model_name = model_name
        self.version = version
        self.signature = signature
        self.batch_size = batch_size
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    # --- What a subclass provides ---------------------------------------------------

    def _predict(self, contents):
        """Scores of a list of encoded images in one request.

        Raises Unavailable (to be retried) or RequestRejected.
        """
        raise NotImplementedError

    def _signatures(self):
        """{signature name: (input keys, output keys)} from the model's metadata."""
        raise NotImplementedError

    # --- Shared ---------------------------------------------------------------------

    def close(self):
        """Free the connection (nothing to free for HTTP)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def model_label(self):
        version = f" version {self.version}" if self.version else ""
        return f"model {self.model_name!r}{version}"

    def timed_out(self):
        """The ServerError for a call that got no answer within `timeout` seconds."""
        return ServerError(f"{self.address}: no answer within {self.timeout:g} s (use --timeout)")

    def check_signature(self):
        """Ask the server for the model's metadata; raise ServerError if it cannot serve us."""
        signatures = self._retrying(self._signatures)
        if self.signature not in signatures:
            raise ServerError(
                f"{self.address}: {self.model_label} has no signature {self.signature!r} "
                f"(it has: {', '.join(sorted(signatures)) or 'none'})"
            )
        inputs, outputs = signatures[self.signature]
        if INPUT_KEY not in inputs or OUTPUT_KEY not in outputs:
            raise ServerError(
                f"{self.address}: signature {self.signature!r} takes {sorted(inputs)} and "
                f"gives {sorted(outputs)}; a DIQA client needs {INPUT_KEY!r} -> {OUTPUT_KEY!r}"
            )

    def score_bytes(self, contents):
        """Scores of a list of encoded images, one request per batch.

        A bad image raises RequestRejected for all (score_files names the file instead).
        """
        scores = []
        for batch in self._batches(list(contents)):
            scores.extend(self._retrying(lambda b=batch: self._predict(b)))
        return np.asarray(scores, np.float32)

    def score_files(self, paths, on_done=None):
        """Score image files. Returns (scores, errors) like `Scorer.score_files`.

        `scores` maps path -> score; `errors` lists InvalidImageError for files that
        cannot be read or that the server refused. A ServerError (the server cannot
        be used at all) stops the run.
        """
        scores, errors = {}, []

        def readable():  # read while sending: only one batch of files is in memory
            for path in paths:
                try:
                    yield path, _read_bytes(path)
                except InvalidImageError as e:
                    errors.append(e)
                    if on_done:
                        on_done(1)

        for batch in self._batches(readable(), size=lambda item: len(item[1])):
            self._score_batch(batch, scores, errors)
            if on_done:
                on_done(len(batch))
        return scores, errors

    def _score_batch(self, batch, scores, errors):
        try:
            values = self._retrying(lambda: self._predict([c for _, c in batch]))
        except RequestRejected as e:
            if len(batch) > 1:
                for item in batch:
                    self._score_batch([item], scores, errors)
                return
            reason = for_its_file(str(e))
            if not reason.startswith("image "):  # a decoder's message, e.g. "Invalid PNG data"
                reason = f"the server cannot decode it ({reason})"
            errors.append(InvalidImageError(batch[0][0], reason))
            return
        if len(values) != len(batch):
            raise ServerError(
                f"{self.address}: sent {len(batch)} images, got {len(values)} scores back"
            )
        for (path, _), value in zip(batch, values):
            scores[path] = float(value)

    def _batches(self, items, size=len):
        """Consecutive batches of at most batch_size items and MAX_REQUEST_BYTES."""
        batch, total = [], 0
        for item in items:
            if batch and (len(batch) == self.batch_size
                          or total + size(item) > MAX_REQUEST_BYTES):
                yield batch
                batch, total = [], 0
            batch.append(item)
            total += size(item)
        if batch:
            yield batch

    def _retrying(self, call):
        """call(), retried on Unavailable; then a ServerError naming the address."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except Unavailable as e:
                if attempt == self.retries:
                    tries = f"{attempt + 1} {'try' if attempt == 0 else 'tries'}"
                    raise ServerError(
                        f"{self.address}: server unavailable after {tries} ({e})"
                    ) from None
                wait = self.backoff * 2**attempt
                logger.debug("%s unavailable (%s); retrying in %.1f s", self.address, e, wait)
                time.sleep(wait)


def _read_bytes(path):
    """A file's bytes, or InvalidImageError naming it (the server does the decoding)."""
    contents = files.read_bytes(path)
    if not contents:
        raise InvalidImageError(path, "empty file (0 bytes)")
    return contents
