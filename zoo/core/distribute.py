"""String -> `tf.distribute` strategy, and the precision policy (Model Garden style)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import keras
import tensorflow as tf
from absl import logging

from zoo.core.config import PRECISIONS, STRATEGIES
from zoo.errors import UsageError


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` also takes scalars with `axis=0`.

    In multi-worker mode Keras 3's `fit` reduces every value `train_step` returns with
    `strategy.reduce("MEAN", value, axis=0)`, which fails for scalar metrics ("Invalid
    reduction dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388). A
    scalar has no batch axis, so it is reduced over the replicas only.
    """

    def reduce(self, reduce_op, value, axis):
        if axis is not None and all(
            getattr(v, "shape", None) is not None and v.shape.rank == 0
            for v in self.experimental_local_results(value)
        ):
            axis = None
        return super().reduce(reduce_op, value, axis)


def configure_virtual_devices(num_devices: int) -> None:
    """Splits the CPU into `num_devices` logical devices (for mirrored runs without GPUs).

    Must run before TensorFlow initialises its devices; a no-op for 0 or when GPUs exist.
    """
    if num_devices <= 0 or tf.config.list_physical_devices("GPU"):
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    except RuntimeError as err:  # devices already initialised in this process
        current = len(tf.config.list_logical_devices("CPU"))
        if current != num_devices:
            raise UsageError(
                f"cannot make {num_devices} virtual CPU devices after TensorFlow started "
                f"({current} exist): {err}"
            ) from err


def build_strategy(
    name: str, *, num_virtual_devices: int = 0, tpu: str = ""
) -> tf.distribute.Strategy:
    """Returns the strategy called `name`.

    Args:
      name: `default` (one device), `mirrored` (all local GPUs, or `num_virtual_devices` CPU
        devices), `multi_worker` (workers from the `TF_CONFIG` environment variable) or `tpu`.
      num_virtual_devices: CPU devices to create for `mirrored` when there is no GPU.
      tpu: TPU name or grpc address for `tpu` ("" = the local TPU VM).

    Raises:
      UsageError: unknown name, missing `TF_CONFIG`, or no reachable TPU.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        configure_virtual_devices(num_virtual_devices)
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UsageError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        try:
            cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
        except (ValueError, KeyError) as err:
            raise UsageError(f"TF_CONFIG is not valid cluster JSON: {err}") from err
        logging.info("multi-worker cluster: %s", cluster)
        return _MultiWorkerMirroredStrategy()
    if name == "tpu":
        if not tpu and not os.path.exists("/dev/accel0") and not os.environ.get("TPU_NAME"):
            raise UsageError("--strategy=tpu: no TPU reachable (no --tpu address, no local TPU)")
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as err:
            raise UsageError(f"--strategy=tpu: no TPU reachable at {tpu!r}: {err}") from err
        return tf.distribute.TPUStrategy(resolver)
    raise UsageError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")


def set_precision(name: str) -> None:
    """Sets the global Keras dtype policy (`float32`, `mixed_float16`, `mixed_bfloat16`)."""
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r}; known: {', '.join(PRECISIONS)}")
    keras.mixed_precision.set_global_policy(name)


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Builds inside use float32 layers (a mixed_float16 generator does not convert to TFLite;
    a pretrained part is built at full precision whatever the run's policy)."""
    previous = keras.mixed_precision.dtype_policy().name
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, samples and logs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief
