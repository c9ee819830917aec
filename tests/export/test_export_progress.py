"""How long an export takes and what it says as it goes: the sizes of its parity batch and of
its int8 calibration set, one progress line per step, the steps' seconds in the JSON."""

from __future__ import annotations

import re
import types

import pytest
import tensorflow as tf

from export import FLAVOURS, export_lib
from zoo import registry


def outputs(*shapes) -> types.SimpleNamespace:
    """A stand-in signature with float32 outputs of these per-example shapes."""
    return types.SimpleNamespace(
        outputs={f"out{i}": tf.TensorSpec([None, *s], tf.float32) for i, s in enumerate(shapes)}
    )


@pytest.mark.parametrize(
    "shapes, batch",
    [
        ([(32, 32, 1)], 8),  # tiny image: the full batch
        ([(64, 64, 3)], 8),  # exactly PARITY_ELEMENTS / 8 per example
        ([(96, 96, 3)], 3),  # 98304 // 27648
        ([(128, 128, 3)], 2),
        ([(256, 256, 3)], 2),  # 256 px CycleGAN: the minimum, not 0
        ([(2,)], 8),  # a 2-D toy
        ([(128, 128, 3), (64, 64, 3)], 2),  # two outputs count together (StackGAN)
        ([(64, 64, 3), (16, 16, 3)], 7),  # 98304 // (12288 + 768)
        ([(None, None, 3)], 8),  # unknown size: the default
    ],
)
def test_parity_batch_follows_the_output_size(shapes, batch):
    assert export_lib.parity_batch(outputs(*shapes)) == batch


def trained_with(task, image_size: int = 0) -> types.SimpleNamespace:
    model = types.SimpleNamespace(config=types.SimpleNamespace(image_size=image_size))
    return types.SimpleNamespace(task=task, model=model)


@pytest.mark.parametrize(
    "size, samples",
    [(16, 64), (32, 64), (48, 28), (64, 16), (128, 4), (256, 4), (512, 4)],
)
def test_cyclegan_calibrates_on_as_many_pixels_as_64_images_of_32_px(size, samples):
    # 64 * 32**2 // size**2 between 4 and 64; 48 px: 65536 // 2304 = 28.
    cyclegan = registry.get("cyclegan")
    assert export_lib.calibration_samples(trained_with(cyclegan, size)) == samples


def test_calibration_samples_come_from_the_family():
    others = [name for name in registry.names() if name != "cyclegan"]
    model = trained_with(None, 256).model
    assert {name: registry.get(name).calibration_samples(model) for name in others} == {
        name: 64 for name in others
    }
    for bad in (0, -3, 2.5, True, None):
        task = types.SimpleNamespace(calibration_samples=lambda model, bad=bad: bad)
        with pytest.raises(export_lib.ExportError, match="calibration_samples"):
            export_lib.calibration_samples(trained_with(task))


class FakeClock:
    """`time` for export_lib whose `perf_counter` moves only when the timed call runs."""

    def __init__(self, seconds_per_call: float):
        self.now, self.step, self.calls = 0.0, seconds_per_call, 0

    def perf_counter(self) -> float:
        return self.now

    def call(self) -> None:
        self.calls += 1
        self.now += self.step


@pytest.mark.parametrize(
    "seconds, warm, timed",
    [
        (0.01, False, 5),  # fast: LATENCY_REPEATS timed calls after one warm-up
        (0.01, True, 5),  # already warm: no extra call
        (0.4, True, 3),  # 0.4 + 0.4 < 1.0 s budget, 1.2 >= 1.0: stop after 3
        (7.0, True, 1),  # slow: one timed call only
    ],
)
def test_latency_stops_at_its_time_budget(monkeypatch, seconds, warm, timed):
    clock = FakeClock(seconds)
    monkeypatch.setattr(export_lib, "time", clock)
    latency, calls = export_lib._latency_ms(clock.call, warm=warm)
    assert calls == timed
    assert clock.calls == timed + (0 if warm else 1)
    assert latency == pytest.approx(1000 * seconds)


@pytest.mark.slow
def test_timings_in_the_json_and_progress_lines(exported):
    m, lines = exported.manifest, exported.stdout.splitlines()
    progress = [line for line in lines if line.startswith("export: ")]
    timings = m["timings"]
    phases = timings["phases"]
    assert all(isinstance(p["seconds"], float) and p["seconds"] >= 0 for p in phases), phases
    assert timings["total_s"] > 0
    # The steps are timed one after the other, inside the total.
    assert sum(p["seconds"] for p in phases) <= timings["total_s"] + 1e-3 * len(phases)
    # One line per step, in the same order, each with its time.
    assert len(progress) == len(phases) + 1, progress
    for line, phase in zip(progress, phases, strict=False):
        seconds = float(re.search(r" in (\d+\.\d) s", line).group(1))
        assert seconds == pytest.approx(phase["seconds"], abs=0.051), (line, phase)
    assert re.fullmatch(rf"export: total in {timings['total_s']:.1f} s", progress[-1])

    steps = [p["step"] for p in phases]
    assert steps[:3] == ["load", "trace", "saved_model"]
    signatures = [s for s in m["signatures"] if m["signatures"][s]["alias_of"] is None]
    assert steps.count("reference") == len(signatures)
    entries = m["tflite"]
    files = sorted((e["signature"], e["flavour"]) for e in entries)
    for step in ("convert", "parity"):
        assert sorted((p["signature"], p["flavour"]) for p in phases if p["step"] == step) == files
    assert steps.count("latency") == len(signatures) + len(entries)
    calibrations = [p for p in phases if p["step"] == "calibration"]
    int8 = [e for e in entries if e["flavour"] == "int8"]
    # Calibrated once per int8 file (an integer-only attempt that fails costs another pass).
    assert len(int8) <= len(calibrations) <= 2 * len(int8)
    expected = 64  # tiny runs: cyclegan's 16 px too
    assert {p["examples"] for p in calibrations} == {expected}
    assert m["parity"]["calibration_samples"] == expected
    for e in entries:
        sig, flavour = e["signature"], e["flavour"]
        batch = m["parity"]["per_signature"][sig]["batch"]
        assert batch == 8  # tiny outputs: the full parity batch
        assert e["latency_calls"] >= 1 and e["threads"] >= 1
        converted = [line for line in progress if f"tflite {flavour} {sig} converted in" in line]
        parity = [line for line in progress if line.startswith(f"export: parity {flavour} {sig} ")]
        assert len(converted) == 1 and len(parity) == 1, progress
        assert f"(batch {batch}," in parity[0]
        assert f"max abs err {e['max_abs_error']:.3g}" in parity[0]
        if flavour == "int8":
            lines_of = [line for line in progress if f"int8 calibration of {sig} " in line]
            assert lines_of and all(f"({expected} examples)" in line for line in lines_of)
    assert {e["flavour"] for e in entries} == set(FLAVOURS)
