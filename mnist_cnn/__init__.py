"""mnist-cnn: a small, honest convolutional network for handwritten digits."""

import os

# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature hints) is noise to a user of
# a command-line tool; real errors still come through as Python exceptions.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
