"""`python -m zoo.tools text_encoder`: every encoder option reaches the saved encoder."""

from __future__ import annotations

import json
import sys

from tests.data.helpers import tiny_arrays, write_idx
from tests.families import run_command
from zoo import text


def _tiny_fashion_dir(tmp_path) -> str:
    images, labels = tiny_arrays()
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    return str(tmp_path)


def test_pretrain_encoder_passes_every_encoder_option(tmp_path):
    from zoo.tools.text_tools import pretrain_encoder

    out = str(tmp_path / "encoder")
    stats = pretrain_encoder(
        "fashion_mnist",
        out,
        data_dir=_tiny_fashion_dir(tmp_path),
        steps=2,
        output_dim=4,
        max_length=5,
        embedding_dim=6,
        units=7,
        captions_per_image=2,
    )
    _, encoder, saved_stats = text.load_text_encoder(out)
    config = text.encoder_config(encoder)
    assert (config["max_length"], config["embedding_dim"], config["units"]) == (5, 6, 7)
    assert config["output_dim"] == 4 and stats == saved_stats and stats["steps"] == 2


def test_text_encoder_command_takes_the_encoder_sizes(tmp_path):
    out = tmp_path / "encoder"
    result = run_command(
        [
            sys.executable,
            "-m",
            "zoo.tools",
            "text_encoder",
            "--dataset=fashion_mnist",
            f"--data_dir={_tiny_fashion_dir(tmp_path)}",
            "--pretrain_steps=2",
            "--output_dim=4",
            "--max_length=5",
            "--text_embedding_dim=6",
            "--text_units=7",
            f"--out={out}",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1])["out"] == str(out)
    config = json.loads((out / "text_encoder.json").read_text())["config"]
    assert (config["max_length"], config["embedding_dim"], config["units"]) == (5, 6, 7)
    assert config["output_dim"] == 4
