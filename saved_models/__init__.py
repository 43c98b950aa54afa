"""The shipped DIQA models (installed as the package `diqa_tf.shipped`); see README.md."""
