"""Scoring images with a stage-2 model: a parallel input pipeline, batches, tiles.

- Files are read and decoded in a tf.data pipeline (parallel map, prefetch), so
  decoding overlaps the model; the model graphs take [None, None, ...] inputs, so
  no image size retraces them.
- Images of one size share a batch; there is no padding, so an image's score
  never depends on the other images it is scored with.
- Images above `tile_pixels` are scored in tiles whose halo covers the receptive
  field (see `tile_spans`): the tiled score equals the whole-image score, and memory
  is bounded by the tile size instead of the image size.
"""

import logging
import math

import keras
import numpy as np
import tensorflow as tf

from diqa_tf import ops, preprocessing
from diqa_tf.data import files, formats
from diqa_tf.data.options import with_autotuning
from diqa_tf.errors import InvalidImageError

logger = logging.getLogger(__name__)

PRECISIONS = ("float32", "bfloat16")
# Images with more pixels are scored in tiles. Whole-image scoring peaks at about
# 290 bytes a pixel (see files.MAX_PIXELS): 4 megapixels stay near 1.2 GB.
TILE_PIXELS = 4_000_000
# Tile cores are TILE_SIZE x TILE_SIZE pixels (plus the halo): ~0.5 GB a tile.
TILE_SIZE = 1024
# A batch holds at most this many pixels (and at most `batch_size` images).
BATCH_PIXELS = 4_000_000
# Decoded images waiting for a partial batch to fill, before all partial batches run.
MAX_BUFFERED = 64


def receptive_field(model):
    """Pixels (along one axis) of the input image that one conv8 output depends on.

    Grey conversion is per pixel. I_low comes from `levels` pyrDown steps and as many
    pyrUp steps, each a 5-tap blur at its level's spacing 2**level (4 * spacing more
    pixels per step); I_hat = I - I_low reaches as far as I_low. Then each backbone
    conv adds (kernel - 1) times the stride before it. For DIQA: 25 + 45 - 1 = 69.
    """
    field = 1
    for level in range(model.preprocessing_config.pyramid_levels):
        field += 2 * 4 * 2**level  # one pyrDown and one pyrUp at spacing 2**level
    jump = 1
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            field += (max(layer.kernel_size) - 1) * jump
            jump *= max(layer.strides)
    return field


def total_stride(model):
    """The factor every tile start and length must respect (lcm of both grids)."""
    jump = 1
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            jump *= max(layer.strides)
    return math.lcm(jump, 2**model.preprocessing_config.pyramid_levels)


def tile_spans(length, core, halo, stride):
    """Tiles along one axis: [(start, stop, core_start, core_stop)] in image pixels.

    The cores partition [0, length). Each tile adds up to `halo` pixels on both
    sides (clipped at the image), starts on a multiple of `stride` and has a length
    congruent to `length` modulo `stride`. So every strided layer (the pyramid and
    the stride-2 'same' convs, whose padding depends on the parity of their input)
    samples the same grid as on the whole image, and pads the image's own borders
    exactly as the whole image does; what the tile's inner edges corrupt stays
    within the halo, since halo >= receptive field.
    """
    if core % stride or halo % stride:
        raise ValueError(
            f"`core` and `halo` must be multiples of {stride}. Received: core={core}, halo={halo}"
        )
    spans = []
    for core_start in range(0, length, core):
        core_stop = min(core_start + core, length)
        start = max(core_start - halo, 0)
        stop = min(core_stop + halo, length)
        stop += (length - stop) % stride  # length congruent to the image's, mod stride
        spans.append((start, stop, core_start, core_stop))
    return spans


class Scorer:
    """Runs a QualityModel on RGB images (0-255), normalizing inside one graph.

    Args:
        model: a QualityModel (float32).
        batch_size: images per batch (at most BATCH_PIXELS pixels per batch).
        precision: "float32", or "bfloat16" to run the backbone convs in bfloat16
            (CPUs with AVX-512 BF16/AMX, GPUs); preprocessing, pooling and the
            head stay float32.
        tile_pixels: images with more pixels are scored in tiles.
        tile_size: the side of a tile's core (a multiple of 4), before the halo.
    """

    def __init__(
        self,
        model,
        batch_size=8,
        precision="float32",
        tile_pixels=TILE_PIXELS,
        tile_size=TILE_SIZE,
    ):
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1. Received: {batch_size}")
        if precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: {precision!r}")
        self.model = model
        self.batch_size = batch_size
        self.precision = precision
        self.tile_pixels = tile_pixels
        self.config = model.preprocessing_config
        self.stride = total_stride(model)
        self.halo = -(-receptive_field(model) // self.stride) * self.stride
        if tile_size < self.stride or tile_size % self.stride:
            raise ValueError(
                f"`tile_size` must be a positive multiple of {self.stride}. Received: {tile_size}"
            )
        self.tile_size = tile_size
        self._backbone = _backbone_copy(model, precision)
        self._hidden = model.get_layer("quality_hidden")
        self._output = model.get_layer("quality")
        self._mapping = model.get_layer("score_mapping")
        images = tf.TensorSpec([None, None, None, 3], tf.float32)
        self._forward = tf.function(self._forward_graph, input_signature=[images])
        self._score = tf.function(self._score_graph, input_signature=[images])
        self._tile_sums = tf.function(
            self._tile_graph,
            input_signature=[
                tf.TensorSpec([None, None, 3], tf.float32),
                tf.TensorSpec([4], tf.int32),
            ],
        )

    # --- Graphs ------------------------------------------------------------------------

    def _forward_graph(self, images):
        return self.model(preprocessing.normalize(images, self.config), training=False)

    def _head(self, pooled, features):
        """The stage-2 head on pooled conv8 and the features: the model's `score`."""
        quality = self._output(self._hidden(tf.concat([pooled, features], axis=-1)))
        return tf.reshape(self._mapping(quality), [-1])

    def _conv8(self, image):
        return tf.cast(self._backbone(image, training=False), tf.float32)

    def _score_graph(self, images):
        """Scores only: the model's score path, without the two map heads."""
        inputs = preprocessing.normalize(images, self.config)
        pooled = tf.reduce_mean(self._conv8(inputs["image"]), axis=[1, 2])
        return self._head(pooled, inputs["features"])

    def _tile_graph(self, tile, core):
        """Sums over a tile's core [top, left, bottom, right] (tile pixels).

        Returns the float64 sums of conv8 (over the core's output cells), of the
        reliability map, of I_low and of I_low**2 (over the core's pixels): the
        whole image's mean conv8, mu_r and sigma_low follow exactly from the sums
        over all tiles.
        """
        top, left, bottom, right = tf.unstack(core)
        hp, low = ops.high_pass(ops.to_grayscale(tile), self.config.pyramid_levels)
        hp_core, low_core = hp[top:bottom, left:right], low[top:bottom, left:right]
        reliability = ops.reliability_map(hp_core, self.config.reliability_alpha)
        low_core = tf.cast(low_core, tf.float64)
        s = self.config.output_stride
        conv8 = self._conv8(hp[tf.newaxis])[0]
        conv8 = conv8[top // s : -(-bottom // s), left // s : -(-right // s)]
        return (
            tf.reduce_sum(tf.cast(conv8, tf.float64), axis=[0, 1]),
            tf.reduce_sum(tf.cast(reliability, tf.float64)),
            tf.reduce_sum(low_core),
            tf.reduce_sum(tf.square(low_core)),
        )

    # --- Arrays ------------------------------------------------------------------------

    def predict_batch(self, images):
        """Model outputs (numpy) for a list of same-size [H, W, 3] images (float32)."""
        outputs = self._forward(tf.stack([tf.cast(i, tf.float32) for i in images]))
        return {key: value.numpy() for key, value in outputs.items()}

    def score_batch(self, images):
        """Scores of a list of same-size [H, W, 3] images (or an [N, H, W, 3] tensor)."""
        if not isinstance(images, tf.Tensor):
            images = tf.stack([tf.cast(i, tf.float32) for i in images])
        return self._score(images).numpy()

    def score_tiled(self, image):
        """The score of one [H, W, 3] image, computed tile by tile (see `tile_spans`).

        Equal to the whole-image score up to float rounding: global average pooling
        is a sum over cells, and the two handcrafted features (mean reliability,
        std of I_low) are computed from their sums and sums of squares, not per tile.
        `image`: float on 0-255, or uint8/uint16 (converted a tile at a time, so a
        large image is held at a quarter or half of float32's memory).
        """
        image = tf.convert_to_tensor(image)
        height, width = int(image.shape[0]), int(image.shape[1])
        rows = tile_spans(height, self.tile_size, self.halo, self.stride)
        cols = tile_spans(width, self.tile_size, self.halo, self.stride)
        logger.debug("%dx%d image: %d tiles", width, height, len(rows) * len(cols))
        conv_sum, r_sum, low_sum, low_sq = 0.0, 0.0, 0.0, 0.0
        for r0, r1, c0, c1 in rows:
            for k0, k1, d0, d1 in cols:
                core = tf.constant([c0 - r0, d0 - k0, c1 - r0, d1 - k0], tf.int32)
                sums = self._tile_sums(ops.to_float(image[r0:r1, k0:k1]), core)
                conv_sum += sums[0].numpy()
                r_sum += float(sums[1])
                low_sum += float(sums[2])
                low_sq += float(sums[3])
        s = self.config.output_stride
        cells = (-(-height // s)) * (-(-width // s))
        pixels = height * width
        mean_low = low_sum / pixels
        sigma_low = math.sqrt(max(low_sq / pixels - mean_low**2, 0.0))
        features = [r_sum / pixels, sigma_low * self.config.sigma_low_scale]
        pooled = tf.constant((conv_sum / cells)[np.newaxis], tf.float32)
        return float(self._head(pooled, tf.constant([features], tf.float32))[0])

    def score_arrays(self, images):
        """Scores of a list of [H, W, 3] arrays of any sizes, in order."""
        scores = np.empty(len(images), np.float32)
        pending = _Batcher(self)
        for index, image in enumerate(images):
            image = tf.convert_to_tensor(image, tf.float32)
            for indices, values in pending.add(index, image):
                scores[indices] = values
        for indices, values in pending.flush():
            scores[indices] = values
        return scores

    # --- Files -------------------------------------------------------------------------

    def score_files(self, paths, on_done=None):
        """Score image files. Returns (scores, errors).

        `scores` maps path -> score for the files that could be read; `errors`
        lists InvalidImageError for the others, in path order. `on_done(n)` is
        called after each batch with the number of files finished (for progress bars).
        """
        paths = list(paths)
        on_done = on_done or (lambda n: None)
        scores, errors = {}, []
        pending = _Batcher(self)

        def finish(results):
            for indices, values in results:
                for index, value in zip(indices, values):
                    scores[paths[index]] = float(value)
                on_done(len(indices))

        def read_alone(index):
            """A file the pipeline left out: too large for it, decoded by Pillow, or
            broken. Read here alone at its own depth: a score, or the reason."""
            try:
                image = files.read_image(paths[index], self.config.min_size, native=True)
            except InvalidImageError as e:
                errors.append(e)
                on_done(1)
                return
            finish(pending.add(index, image))

        expected = 0
        for index, image in self._decoded(paths):
            index = int(index)
            for missing in range(expected, index):
                read_alone(missing)
            expected = index + 1
            if min(image.shape[0], image.shape[1]) < self.config.min_size:
                read_alone(index)  # too small: read_image says so, with the size
                continue
            finish(pending.add(index, image))
        for missing in range(expected, len(paths)):
            read_alone(missing)
        finish(pending.flush())
        return scores, errors

    def score_contents(self, items):
        """Score encoded images already in memory: [(path, bytes)] -> (scores, errors).

        For bytes read elsewhere (Spark's binaryFile, object stores): the checks of
        `files.read_image`, then the batches of `score_files`; `path` only names the
        image. Returns what score_files returns. Decoding runs in this thread, one
        image after another (the network costs far more).
        """
        paths, scores, errors = [], {}, []
        pending = _Batcher(self)

        def keep(results):
            for indices, values in results:
                for index, value in zip(indices, values):
                    scores[paths[index]] = float(value)

        for index, (path, contents) in enumerate(items):
            paths.append(str(path))
            try:
                image = files.decode_contents(path, contents, self.config.min_size)
            except InvalidImageError as e:
                errors.append(e)
                continue
            keep(pending.add(index, image))
        keep(pending.flush())
        return scores, errors

    def _decoded(self, paths):
        """(index, image) of the files that read and decode, in order, in parallel.

        Files are read and checked against MAX_PIXELS from their header in Python
        (cheap; refuses decompression bombs before decoding), decoded by a parallel
        tf.data map to float32. Left out, for the caller to read alone: files that
        fail anywhere, images above `tile_pixels` (read at their own depth, a
        quarter of float32's memory for 8 bits, and converted tile by tile) and the
        formats TF does not decode (formats.PILLOW_FORMATS).
        """

        def contents():
            for index, path in enumerate(paths):
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                    pixels = files.check_pixel_count(path, data)
                except (OSError, InvalidImageError):
                    continue
                if not data or formats.sniff(data) not in formats.TF_FORMATS:
                    continue
                if pixels is None or pixels <= self.tile_pixels:
                    yield index, data

        ds = tf.data.Dataset.from_generator(
            contents,
            output_signature=(
                tf.TensorSpec([], tf.int64),
                tf.TensorSpec([], tf.string),
            ),
        )
        ds = ds.map(
            lambda index, data: (index, ops.decode_image(data)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        # No autotuning: with the model busy on every core, deleting an autotuned
        # iterator blocked for up to 2.5 s, one call in two (measured on 24 Kodak
        # photos; 4 s of work). The map then runs one decode per core.
        return with_autotuning(ds.ignore_errors().prefetch(self.batch_size), False)


class _Batcher:
    """Collects decoded images into batches of one size and scores them.

    `add` and `flush` return [(indices, scores)] for whatever ran. Large images are
    tiled at once; partial batches wait until MAX_BUFFERED images are waiting.
    """

    def __init__(self, scorer):
        self.scorer = scorer
        self.groups = {}
        self.waiting = 0

    def add(self, index, image):
        """`image`: [H, W, 3], float32 on 0-255, or uint8/uint16 (see ops.to_float)."""
        height, width = int(image.shape[0]), int(image.shape[1])
        pixels = height * width
        if pixels > self.scorer.tile_pixels:
            return [([index], [self.scorer.score_tiled(image)])]
        image = ops.to_float(image)
        group = self.groups.setdefault((height, width), [])
        group.append((index, image))
        self.waiting += 1
        limit = max(1, min(self.scorer.batch_size, BATCH_PIXELS // pixels))
        if len(group) >= limit:
            del self.groups[(height, width)]
            self.waiting -= len(group)
            return [self._run(group)]
        if self.waiting >= MAX_BUFFERED:
            return self.flush()
        return []

    def flush(self):
        groups, self.groups, self.waiting = self.groups, {}, 0
        return [self._run(group) for group in groups.values()]

    def _run(self, group):
        indices = [index for index, _ in group]
        return indices, self.scorer.score_batch([image for _, image in group])


def _backbone_copy(model, precision):
    """The model's backbone, or a copy computing in bfloat16 (same float32 weights)."""
    if precision == "float32":
        return model.backbone
    from diqa_tf.training.precision import precision_policy

    with precision_policy("mixed_bfloat16"):
        backbone = model.backbone.__class__.from_config(model.backbone.get_config())
    backbone.set_weights(model.backbone.get_weights())
    return backbone
