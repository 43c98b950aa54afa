"""diqa-tf: DIQA blind image quality prediction (Kim, Nguyen and Lee, TNNLS 2019)."""

import os as _os

# TensorFlow's C++ start-up chatter is not for our users; set before TF loads.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
