"""The tf.data options our pipelines share."""

import tensorflow as tf


def with_autotuning(ds, enabled):
    """`ds` with tf.data's autotuning on or off (TF's default: on).

    Off, parallel maps given AUTOTUNE run one call per core and nothing is tuned while
    the pipeline runs. Our pipelines run beside a model busy on every core, where
    autotuning was measured to cost more than it tuned; the measurements are at the
    call sites.
    """
    options = tf.data.Options()
    options.autotune.enabled = enabled
    return ds.with_options(options)
