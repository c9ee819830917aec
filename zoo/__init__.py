"""ganzoo: a TensorFlow/Keras model zoo of generative adversarial networks."""

from zoo.errors import UsageError

__all__ = ["UsageError"]
__version__ = "0.1.0"
