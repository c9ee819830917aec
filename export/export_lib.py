"""Export of trained generators: TF Serving SavedModel with warmup, builtins-only TFLite.

`export(model_dir, export_dir)` rebuilds a run's generator(s) in float32 from its config JSON
and a checkpoint, whatever precision trained them, and writes

    EXPORT_DIR/<name>/<version>/                  SavedModel in TF Serving's layout
        assets.extra/tf_serving_warmup_requests   TFRecord of PredictionLog, per signature
    EXPORT_DIR/<name>.<flavour>.tflite            float32, float16, int8 (builtin ops only)
    EXPORT_DIR/<name>.<signature>.<flavour>.tflite  instead, for models with several signatures
    EXPORT_DIR/<name>.json                        model, specs, step, parity, latency, sizes,
                                                  timings (seconds of each step and in all)

Nothing here knows a family: the model's `serving_signatures()` says what to serve and
`representative_inputs()` what the generator is fed (int8 calibration, warmup, parity) and
`calibration_samples()` how many inputs int8 calibration takes. Each step is reported to `log`
as it ends, with its time.
The export is atomic: the SavedModel is written to a hidden directory beside the versions
(TF Serving only loads all-digit directory names) and renamed into place once every check
has passed; files are written through a temporary file and a rename. What an export killed
before the rename leaves behind, the next export into the same directory removes
(`export.staging`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from export import FLAVOURS, FORMATS, parse_formats
from export.staging import prefix as staging_prefix
from export.staging import remove_stale as remove_stale_staging
from zoo import run as zoo_run
from zoo.core.config import config_to_dict
from zoo.errors import UsageError, first_line
from zoo.io import read_json, readable_by_all
from zoo.rundir import check_writable_dir

# Max absolute error against the SavedModel that fails an export, per flavour.
PARITY_TOLERANCE = {"float32": 1e-4, "float16": 2e-2}
# int8 is reported; above this max absolute error the export warns (it does not fail).
INT8_WARNING_ERROR = 0.25
# Parity runs on a fixed batch sized to the generator's output, whatever the family
# (`parity_batch`): PARITY_BATCH examples, fewer for big outputs so that the batch holds about
# PARITY_ELEMENTS output values (8 examples of 64 px RGB), never fewer than MIN_PARITY_BATCH
# (a batch > 1 also checks the dynamic batch axis). A 256 px RGB output gets 2 examples:
# 393 216 output values, where one LiteRT call costs about a second per image; the float32
# and float16 limits hold for every one of those values, so the guarantee is the same check.
PARITY_BATCH = 8
MIN_PARITY_BATCH = 2
PARITY_ELEMENTS = 8 * 64 * 64 * 3
PARITY_SEED = 20160107
# int8 calibration: how many representative inputs is the family's (`Task.calibration_samples`,
# 64 by default; CycleGAN 4 at 256 px, see zoo/models/cyclegan/task.py).
CALIBRATION_SEED = 1
WARMUP_BATCHES = (1, 2, 4)  # one request per batch size and signature
WARMUP_SEED = 2
WARMUP_FILE = "tf_serving_warmup_requests"
# Latency: the median of up to LATENCY_REPEATS timed calls after the parity call (which warms
# up), stopping once the timed calls took LATENCY_BUDGET_S (at least one timed call).
LATENCY_REPEATS = 5
LATENCY_BUDGET_S = 1.0
SERVING_DEFAULT = "serving_default"


class ExportError(RuntimeError):
    """The export cannot be trusted (conversion, operators or parity failed); nothing written."""


@dataclasses.dataclass
class Signature:
    """One served function: its traced concrete function and named input specs."""

    name: str
    function: Any  # tf ConcreteFunction: keyword tensors -> dict of float32 outputs
    inputs: dict[str, tf.TensorSpec]

    @property
    def outputs(self) -> dict[str, tf.TensorSpec]:
        return dict(self.function.structured_outputs)


@dataclasses.dataclass
class ExportResult:
    """What `export` wrote, and the parity it measured (also in `json_path`)."""

    name: str
    version: int
    saved_model_dir: str | None
    tflite_files: list[str]
    json_path: str
    manifest: dict[str, Any]
    warnings: list[str]


def _keyword_function(fn: Callable[..., dict], names: list[str]) -> Callable[..., dict]:
    def call(*args: tf.Tensor) -> dict[str, tf.Tensor]:
        return fn(**dict(zip(names, args, strict=True)))

    return call


def trace_signatures(task: Any, model: Any) -> dict[str, Signature]:
    """Traces the family task's `serving_signatures(model)` into concrete functions (in the
    family's order)."""
    table = task.serving_signatures(model)
    if not table:
        raise ExportError(f"{model.family_name} serves no signature")
    signatures = {}
    for name, (fn, specs) in table.items():
        specs = {
            key: tf.TensorSpec(spec.shape, spec.dtype, name=key) for key, spec in specs.items()
        }
        if any(spec.shape.rank is None or spec.shape[0] is not None for spec in specs.values()):
            raise ExportError(f"signature {name}: every input needs a dynamic batch axis")
        function = tf.function(
            _keyword_function(fn, list(specs)), input_signature=list(specs.values())
        )
        concrete = function.get_concrete_function()
        outputs = concrete.structured_outputs
        if not isinstance(outputs, dict) or "images" not in outputs:
            raise ExportError(f"signature {name} must return a dict with 'images'")
        if any(spec.dtype != tf.float32 for spec in outputs.values()):
            raise ExportError(f"signature {name}: outputs must be float32")
        signatures[name] = Signature(name, concrete, specs)
    return signatures


def serving_signature_map(signatures: dict[str, Signature]) -> dict[str, Any]:
    """The SavedModel's signatures: the family's, plus `serving_default` = the first one."""
    functions = {name: s.function for name, s in signatures.items()}
    functions.setdefault(SERVING_DEFAULT, next(iter(signatures.values())).function)
    return functions


class ServingModule(tf.Module):
    """Holds exactly the variables the signatures read (the generators; not D or optimizers)."""

    def __init__(self, signatures: dict[str, Signature]):
        super().__init__(name="generator")
        seen: dict[int, tf.Variable] = {}
        for signature in signatures.values():
            for variable in signature.function.variables:
                seen.setdefault(id(variable), variable)
        self.generator_variables = list(seen.values())


def representative_inputs(
    trained: zoo_run.TrainedRun, signature: Signature, num: int, seed: int
) -> dict[str, np.ndarray]:
    """The task's `representative_inputs` for one signature, checked against its input specs."""
    inputs = trained.task.representative_inputs(
        trained.model, num, seed, trained.run_config, signature=signature.name
    )
    if set(inputs) != set(signature.inputs):
        raise ExportError(
            f"representative_inputs gave {sorted(inputs)} for signature {signature.name}, "
            f"which takes {sorted(signature.inputs)}"
        )
    return {
        key: np.asarray(inputs[key]).astype(spec.dtype.as_numpy_dtype)
        if spec.dtype != tf.string
        else np.asarray(inputs[key], dtype=object)
        for key, spec in signature.inputs.items()
    }


def _elements_per_example(signature: Signature) -> int | None:
    """Output values one example of a signature produces (None if a dimension is unknown)."""
    total = 0
    for spec in signature.outputs.values():
        dims = spec.shape.as_list()[1:]
        if any(d is None for d in dims):
            return None
        total += int(np.prod(dims, dtype=np.int64))
    return max(1, total)


def parity_batch(signature: Signature) -> int:
    """The fixed parity batch of one signature: PARITY_BATCH, fewer for big outputs (about
    PARITY_ELEMENTS output values), never below MIN_PARITY_BATCH."""
    elements = _elements_per_example(signature)
    if elements is None:
        return PARITY_BATCH
    return min(PARITY_BATCH, max(MIN_PARITY_BATCH, PARITY_ELEMENTS // elements))


def calibration_samples(trained: zoo_run.TrainedRun) -> int:
    """How many representative inputs int8 calibration gets: the family task's number."""
    count = trained.task.calibration_samples(trained.model)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ExportError(f"calibration_samples must be a positive int, got {count!r}")
    return count


class Progress:
    """Times the steps of an export: one `log` line per step as it ends, and the list of
    steps with their seconds that goes into the export's JSON (`timings`)."""

    def __init__(self, log: Callable[[str], None]):
        self.log = log
        self.started = time.perf_counter()
        self.phases: list[dict[str, Any]] = []

    def record(self, step: str, seconds: float, text: str, result: str = "", **fields: Any) -> None:
        """Records a step that took `seconds` and logs `<text> in <seconds> s[, <result>]`."""
        self.phases.append({"step": step, **fields, "seconds": round(seconds, 3)})
        self.log(f"{text} in {seconds:.1f} s" + (f", {result}" if result else ""))

    @contextlib.contextmanager
    def step(self, step: str, text: str, **fields: Any) -> Iterator[None]:
        """Times the block as one step (recorded only if it succeeds)."""
        start = time.perf_counter()
        yield
        self.record(step, time.perf_counter() - start, text, **fields)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def timings(self) -> dict[str, Any]:
        return {"total_s": round(self.elapsed(), 3), "phases": list(self.phases)}


# -- warmup requests (TF Serving's PredictionLog, written without tensorflow-serving-api) ----
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _message_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(model_name: str, signature: str, inputs: dict[str, Any]) -> bytes:
    """A serialized `tensorflow.serving.PredictionLog` holding one `PredictRequest`.

    Field numbers of TF Serving's `prediction_log.proto` / `predict.proto` / `model.proto`:
    PredictionLog.predict_log = 6; PredictLog.request = 1; PredictRequest.model_spec = 1,
    .inputs = 2 (map<string, TensorProto>: entry key = 1, value = 2); ModelSpec.name = 1,
    .signature_name = 3.
    """
    spec = _message_field(1, model_name.encode()) + _message_field(3, signature.encode())
    request = _message_field(1, spec)
    for key, value in inputs.items():
        tensor = tf.make_tensor_proto(value).SerializeToString()
        request += _message_field(2, _message_field(1, key.encode()) + _message_field(2, tensor))
    return _message_field(6, _message_field(1, request))


def write_warmup_requests(
    path: str, model_name: str, requests: Sequence[tuple[str, dict[str, Any]]]
) -> None:
    """Writes (signature, inputs) requests as the TFRecord TF Serving replays at load."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            writer.write(prediction_log(model_name, signature, inputs))


def save_saved_model(
    trained: zoo_run.TrainedRun, signatures: dict[str, Signature], directory: str, model_name: str
) -> int:
    """Writes the SavedModel and its warmup requests to `directory`; returns the request count."""
    functions = serving_signature_map(signatures)
    tf.saved_model.save(ServingModule(signatures), directory, signatures=functions)
    requests = []
    for key in functions:
        signature = signatures.get(key) or next(iter(signatures.values()))
        for i, batch in enumerate(WARMUP_BATCHES):
            inputs = representative_inputs(trained, signature, batch, WARMUP_SEED + i)
            requests.append((key, inputs))
    write_warmup_requests(
        os.path.join(directory, "assets.extra", WARMUP_FILE), model_name, requests
    )
    return len(requests)


# -- TFLite ----------------------------------------------------------------------------------
def convert(
    saved_model_dir: str,
    signature: str,
    flavour: str,
    representative: dict[str, np.ndarray] | None = None,
    on_calibrated: Callable[[float, int], None] | None = None,
) -> tuple[bytes, bool]:
    """Converts one signature of a SavedModel to TFLite with builtin operators only.

    Args:
      saved_model_dir: the SavedModel.
      signature: the signature key to convert.
      flavour: `float32`; `float16` (float16 weights); `int8` (weights and activations
        quantized with `representative` as calibration data; float input and output).
      representative: calibration inputs keyed by input name (int8 only).
      on_calibrated: called with (seconds, examples) after each pass of the calibrator over
        `representative` (int8 only), as it happens.

    Returns:
      The flatbuffer and whether every quantizable op runs in int8 (True except for an
      int8 model that needed float builtins for some ops).

    Raises:
      ExportError: the converter failed.
    """

    def converter(ops: list[Any]) -> Any:
        result = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_dir, signature_keys=[signature]
        )
        result.target_spec.supported_ops = ops
        return result

    try:
        if flavour == "float32":
            return converter([tf.lite.OpsSet.TFLITE_BUILTINS]).convert(), False
        if flavour == "float16":
            c = converter([tf.lite.OpsSet.TFLITE_BUILTINS])
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.target_spec.supported_types = [tf.float16]
            return c.convert(), False
        if flavour != "int8":
            raise ValueError(f"unknown flavour {flavour!r}")
        if not representative:
            raise ValueError("int8 needs representative inputs")
        count = len(next(iter(representative.values())))

        def dataset() -> Iterator[dict[str, np.ndarray]]:
            # The calibrator pulls the examples one by one while it runs the float model on
            # them: first pull to exhaustion is the calibration.
            start = time.perf_counter()
            for i in range(count):
                yield {key: value[i : i + 1] for key, value in representative.items()}
            if on_calibrated is not None:
                on_calibrated(time.perf_counter() - start, count)

        # Integer-only kernels first; ops without one fall back to float builtins (never Flex).
        for ops, integer_only in (
            ([tf.lite.OpsSet.TFLITE_BUILTINS_INT8], True),
            ([tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS], False),
        ):
            c = converter(ops)
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.representative_dataset = dataset
            try:
                return c.convert(), integer_only
            except Exception:
                if not integer_only:
                    raise
        raise AssertionError("unreachable")
    except Exception as err:
        raise ExportError(
            f"TFLite {flavour} conversion of signature {signature} failed: {first_line(err)}"
        ) from err


def tflite_operators(content: bytes) -> list[str]:
    """Names of the operators a TFLite flatbuffer uses (`CUSTOM:<code>` for custom/Flex)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(content, 0)
    operators = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            operators.append(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
        else:
            operators.append(names.get(builtin, f"BUILTIN_{builtin}"))
    return operators


def check_builtins_only(operators: Sequence[str], what: str) -> None:
    """Raises `ExportError` if a TFLite model needs custom or Flex (TF runtime) operators."""
    custom = [op for op in operators if op.startswith("CUSTOM")]
    if custom:
        raise ExportError(f"{what} needs non-builtin operators: {', '.join(custom)}")


def cpu_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def litert_runner(
    content: bytes | None = None,
    path: str | None = None,
    signature: str = "",
    num_threads: int | None = None,
) -> Any:
    """A LiteRT signature runner (resizes its inputs to each call's batch), on `num_threads`
    threads (default: every CPU this process may use; LiteRT's own default is one)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(
        model_content=content, model_path=path, num_threads=num_threads or cpu_threads()
    )
    keys = list(interpreter.get_signature_list())
    return interpreter.get_signature_runner(signature or keys[0])


def _latency_ms(fn: Callable[[], Any], warm: bool = False) -> tuple[float, int]:
    """Median wall time of a call in milliseconds and the number of timed calls: up to
    LATENCY_REPEATS, stopping once they took LATENCY_BUDGET_S (at least one). One untimed
    warm-up call first unless `warm` (the caller has just made one, e.g. the parity run)."""
    if not warm:
        fn()
    times: list[float] = []
    while len(times) < LATENCY_REPEATS and sum(times) < LATENCY_BUDGET_S:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 3), len(times)


def _spec_json(spec: tf.TensorSpec) -> dict[str, Any]:
    return {"dtype": spec.dtype.name, "shape": [None if d is None else int(d) for d in spec.shape]}


def _errors(
    outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> tuple[float, float]:
    diffs = [np.abs(outputs[k].astype(np.float64) - reference[k]).ravel() for k in reference]
    diff = np.concatenate(diffs)
    if not np.all(np.isfinite(diff)):
        return float("inf"), float("inf")
    return float(diff.max()), float(diff.mean())


def _tflite_file_name(name: str, signature: str, flavour: str, per_signature: bool) -> str:
    return f"{name}.{signature}.{flavour}.tflite" if per_signature else f"{name}.{flavour}.tflite"


def _tree_size(directory: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(directory)
        for f in files
    )


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or os.sep in name or name in ("..",):
        raise UsageError(f"--name must be a plain file name, got {name!r}")


def _write_bytes_staged(directory: str, content: bytes, suffix: str = ".tflite") -> str:
    fd, tmp = tempfile.mkstemp(prefix=staging_prefix(), suffix=suffix, dir=directory)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    readable_by_all(tmp)
    return tmp


def tflite_with_parity(
    saved_model_dir: str,
    signature: str,
    flavour: str,
    file_name: str,
    batch: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    calibration: dict[str, np.ndarray] | None,
    progress: Progress | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Converts one signature to one flavour, checks its operators and measures its parity.

    Each step (int8 calibration, conversion, parity run, latency) is recorded in `progress`
    as it ends.

    Returns:
      The flatbuffer and its manifest entry (errors against `reference`, the SavedModel's
      outputs on `batch`; operators; input tensors; latency; size).

    Raises:
      ExportError: conversion failed, non-builtin operators, or float32/float16 parity out of
        tolerance.
    """
    progress = progress or Progress(lambda message: None)
    where = {"signature": signature, "flavour": flavour}
    calibrated: list[float] = []

    def on_calibrated(seconds: float, count: int) -> None:
        calibrated.append(seconds)
        progress.record(
            "calibration",
            seconds,
            f"int8 calibration of {signature} ({count} examples)",
            examples=count,
            **where,
        )

    start = time.perf_counter()
    content, integer_only = convert(saved_model_dir, signature, flavour, calibration, on_calibrated)
    progress.record(
        "convert",
        time.perf_counter() - start - sum(calibrated),
        f"tflite {flavour} {signature} converted",
        "calibration not included" if calibrated else "",
        **where,
    )
    operators = tflite_operators(content)
    check_builtins_only(operators, file_name)
    threads = cpu_threads()
    runner = litert_runner(content, signature=signature, num_threads=threads)
    size = len(next(iter(batch.values())))
    start = time.perf_counter()
    max_error, mean_error = _errors(runner(**batch), reference)
    tolerance = PARITY_TOLERANCE.get(flavour)
    progress.record(
        "parity",
        time.perf_counter() - start,
        f"parity {flavour} {signature} (batch {size}, {threads} threads)",
        f"max abs err {max_error:.3g}"
        + (f" (limit {tolerance:g})" if tolerance is not None else " (reported)"),
        batch=size,
        **where,
    )
    if tolerance is not None and not max_error <= tolerance:
        raise ExportError(
            f"{file_name}: max abs error {max_error:.3g} against the SavedModel exceeds "
            f"{tolerance:g}; nothing was written"
        )
    inputs = {
        key: {"dtype": np.dtype(d["dtype"]).name, "shape": [int(n) for n in d["shape_signature"]]}
        for key, d in runner.get_input_details().items()
    }
    start = time.perf_counter()
    latency, calls = _latency_ms(lambda: runner(**batch), warm=True)
    progress.record(
        "latency",
        time.perf_counter() - start,
        f"latency {flavour} {signature} ({calls} calls)",
        f"{latency:.1f} ms/batch",
        calls=calls,
        **where,
    )
    return content, {
        "signature": signature,
        "flavour": flavour,
        "file": file_name,
        "size_bytes": len(content),
        "operators": sorted(set(operators)),
        "integer_only": integer_only if flavour == "int8" else None,
        "inputs": inputs,
        "max_abs_error": max_error,
        "mean_abs_error": mean_error,
        "tolerance": INT8_WARNING_ERROR if tolerance is None else tolerance,
        "status": "ok" if tolerance is not None or max_error <= INT8_WARNING_ERROR else "warning",
        "latency_ms": latency,
        "latency_calls": calls,
        "threads": threads,
    }


# -- the export ------------------------------------------------------------------------------
def export(
    model_dir: str,
    export_dir: str,
    *,
    name: str | None = None,
    version: int | None = None,
    formats: str | Sequence[str] = FORMATS,
    checkpoint: str | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda message: None,
    weights: str | None = None,
) -> ExportResult:
    """Exports a run's generator(s) to TF Serving and TFLite, with parity measured.

    Args:
      model_dir: the training run directory.
      export_dir: the export root (`OUT`): `OUT/<name>/<version>/`, `OUT/<name>.*.tflite`,
        `OUT/<name>.json`.
      name: the served model's name (default: the family name).
      version: the SavedModel version (default: the checkpoint's training step).
      formats: any of `saved_model`, `float32`, `float16`, `int8`.
      checkpoint: a checkpoint prefix or directory instead of the run's latest.
      overwrite: replace an existing version.
      log: receives one progress line per step as it ends (loading, SavedModel, each
        reference run, int8 calibration, conversion, parity run and latency, the total);
        the steps' seconds and the total are also in the JSON's `timings`.
      weights: `ema` or `raw` generator weights (`zoo.run.load_trained`); default `ema` when
        the run averaged them. The JSON's `weights` says which.

    Returns:
      An `ExportResult`; `manifest` is what `OUT/<name>.json` holds.

    Raises:
      UsageError: bad input (no run, no or unreadable checkpoint, unknown format, a version
        that exists without `overwrite`).
      ExportError: conversion failed, non-builtin operators, or float32/float16 parity out
        of tolerance. Nothing is written then.
    """
    formats = parse_formats(formats)
    if any(f in FLAVOURS for f in formats):
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError as err:
            raise UsageError(
                "TFLite parity runs in LiteRT: pip install ai-edge-litert "
                "(or export only --formats=saved_model)"
            ) from err
    check_writable_dir(export_dir, "--export_dir")
    remove_stale_staging(export_dir)
    progress = Progress(log)
    start = time.perf_counter()
    trained = zoo_run.load_trained(model_dir, checkpoint, weights)
    model = trained.model
    progress.record(
        "load",
        time.perf_counter() - start,
        f"rebuilt {model.family_name} in float32 from {trained.checkpoint}",
    )
    name = name or model.family_name
    _check_name(name)
    version = trained.step if version is None else int(version)
    if version < 0:
        raise UsageError(f"--version must be >= 0, got {version}")
    export_dir = os.path.abspath(export_dir)
    model_root = os.path.join(export_dir, name)
    final_dir = os.path.join(model_root, str(version))
    json_path = os.path.join(export_dir, f"{name}.json")
    _check_free(final_dir, json_path, version, "saved_model" in formats, overwrite)
    os.makedirs(model_root, exist_ok=True)

    with progress.step("trace", "traced the serving signatures"):
        signatures = trace_signatures(trained.task, model)
    flavours = [f for f in FLAVOURS if f in formats]
    tflite_names = [n for n in trained.task.tflite_signatures(model) if n in signatures]
    per_signature = len(tflite_names) > 1
    # Hidden (non-numeric) name: TF Serving only loads all-digit version directories.
    staging = tempfile.mkdtemp(prefix=f"{staging_prefix()}{version}-", dir=model_root)
    readable_by_all(staging)
    staged_files: dict[str, str] = {}  # final path -> staged temp file
    warnings: list[str] = list(trained.warnings)
    try:
        start = time.perf_counter()
        warmup_count = save_saved_model(trained, signatures, staging, name)
        loaded = tf.saved_model.load(staging)
        progress.record(
            "saved_model",
            time.perf_counter() - start,
            f"SavedModel written with {warmup_count} warmup requests and loaded back",
        )
        entries, saved_latency, sizes = [], {}, {}
        calibration_size = calibration_samples(trained)
        for signature in signatures.values():
            batch_size = parity_batch(signature)
            sizes[signature.name] = {"batch": batch_size, "calibration_samples": 0}
            start = time.perf_counter()
            batch = representative_inputs(trained, signature, batch_size, PARITY_SEED)
            served = loaded.signatures[signature.name]
            tensors = {k: tf.constant(v, dtype=signature.inputs[k].dtype) for k, v in batch.items()}
            reference = {k: v.numpy().astype(np.float64) for k, v in served(**tensors).items()}
            progress.record(
                "reference",
                time.perf_counter() - start,
                f"reference {signature.name} (SavedModel, batch {batch_size})",
                signature=signature.name,
                batch=batch_size,
            )
            start = time.perf_counter()
            saved_latency[signature.name], calls = _latency_ms(
                lambda s=served, t=tensors: s(**t), warm=True
            )
            progress.record(
                "latency",
                time.perf_counter() - start,
                f"latency SavedModel {signature.name} ({calls} calls)",
                f"{saved_latency[signature.name]:.1f} ms/batch",
                signature=signature.name,
                flavour="saved_model",
                calls=calls,
            )
            calibration = None
            if "int8" in flavours and signature.name in tflite_names:
                calibration = representative_inputs(
                    trained, signature, calibration_size, CALIBRATION_SEED
                )
                sizes[signature.name]["calibration_samples"] = calibration_size
            for flavour in flavours if signature.name in tflite_names else ():
                file_name = _tflite_file_name(name, signature.name, flavour, per_signature)
                content, entry = tflite_with_parity(
                    staging,
                    signature.name,
                    flavour,
                    file_name,
                    batch,
                    reference,
                    calibration,
                    progress,
                )
                entries.append(entry)
                if entry["status"] == "warning":
                    warnings.append(
                        f"{file_name}: int8 max abs error {entry['max_abs_error']:.3g} against "
                        f"the SavedModel is above {INT8_WARNING_ERROR}; prefer the float16 file"
                    )
                staged = _write_bytes_staged(export_dir, content)
                staged_files[os.path.join(export_dir, file_name)] = staged
        del loaded
        first_sizes = next(iter(sizes.values()))
        manifest = {
            "name": name,
            "family": model.family_name,
            "model_config": config_to_dict(model.config),
            "data": trained.saved.get("data", {}),
            "trained_with": {
                "mixed_precision": trained.run_config.mixed_precision,
                "dataset": trained.run_config.dataset,
                "seed": trained.run_config.seed,
            },
            "checkpoint": os.path.abspath(trained.checkpoint),
            "step": trained.step,
            "weights": trained.weights,
            "version": version,
            "saved_model": {
                "path": os.path.join(name, str(version)) if "saved_model" in formats else None,
                "size_bytes": _tree_size(staging),
                "warmup_requests": warmup_count,
                "latency_ms": saved_latency,
            },
            "signatures": {
                key: {
                    "inputs": {k: _spec_json(s) for k, s in signatures[fn_key].inputs.items()},
                    "outputs": {k: _spec_json(s) for k, s in signatures[fn_key].outputs.items()},
                    "alias_of": fn_key if fn_key != key else None,
                }
                for key in serving_signature_map(signatures)
                for fn_key in [key if key in signatures else next(iter(signatures))]
            },
            "parity": {
                "reference": "saved_model",
                # Sizes of the first signature (the same for all of them unless their outputs
                # differ in size); `per_signature` has each.
                "batch": first_sizes["batch"],
                "seed": PARITY_SEED,
                "calibration_samples": max(s["calibration_samples"] for s in sizes.values()),
                "calibration_seed": CALIBRATION_SEED,
                "per_signature": sizes,
                "runtime": "ai_edge_litert",
                "threads": cpu_threads(),
            },
            "tflite": entries,
            "warnings": warnings,
            **trained.task.export_metadata(model),
        }
        # Seconds of each step and of the whole export up to here (the renames that follow
        # take milliseconds).
        manifest["timings"] = progress.timings()
        log(f"total in {manifest['timings']['total_s']:.1f} s")
        staged_json = _write_bytes_staged(
            export_dir, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), ".json"
        )
        staged_files[json_path] = staged_json
        _check_free(final_dir, json_path, version, "saved_model" in formats, overwrite)
        placements = [(staging, final_dir)] if "saved_model" in formats else []
        placements += [(tmp, final) for final, tmp in staged_files.items()]
        _commit(placements)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for tmp in staged_files.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    if "saved_model" not in formats:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(
        name=name,
        version=version,
        saved_model_dir=final_dir if "saved_model" in formats else None,
        tflite_files=[f for f in staged_files if f.endswith(".tflite")],
        json_path=json_path,
        manifest=manifest,
        warnings=warnings,
    )


def _check_free(
    final_dir: str, json_path: str, version: int, saved_model: bool, overwrite: bool
) -> None:
    if overwrite:
        return
    if saved_model and os.path.exists(final_dir):
        raise UsageError(f"{final_dir} exists; give another --version or --overwrite")
    if not saved_model and os.path.exists(json_path):
        try:
            described = read_json(json_path).get("version")
        except UsageError:
            described = None  # an unreadable manifest is replaced
        if described == version:
            raise UsageError(
                f"{json_path} already describes version {version}; "
                "give another --version or --overwrite"
            )


def _place(staged: str, final: str) -> None:
    """Renames one staged file or directory into place (one step of `_commit`)."""
    os.rename(staged, final)


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)


def _commit(placements: list[tuple[str, str]]) -> None:
    """Renames each (staged, final) pair into place, all or nothing.

    What a final path held before is moved aside to a hidden name first; if any rename
    fails, the new ones are removed and the old ones put back. The SavedModel version comes
    first and the JSON manifest last.
    """
    done: list[tuple[str, str | None]] = []
    try:
        for staged, final in placements:
            backup = None
            if os.path.lexists(final):
                backup = os.path.join(
                    os.path.dirname(final), f".old-{os.path.basename(final)}-{os.getpid()}"
                )
                _remove(backup)
                os.rename(final, backup)
            done.append((final, backup))
            _place(staged, final)
    except BaseException:
        for final, backup in reversed(done):
            _remove(final)
            if backup:
                os.rename(backup, final)
        raise
    for _, backup in done:
        if backup:
            _remove(backup)
