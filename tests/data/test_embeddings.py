import io
import os
import pickle

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from zoo.data import embeddings as emb
from zoo.data import make_text_dataset
from zoo.errors import UsageError

NUM, K, D = 8, 3, 5

# `[np.array([0, 1, 2], float32), "café"]` as Python 2 pickled it (protocol 0).
PY2_PICKLE = (
    b"(lp0\ncnumpy.core.multiarray\n_reconstruct\np1\n(cnumpy\nndarray\np2\n(I0\ntp3\nS'b'\n"
    b"p4\ntp5\nRp6\n(I1\n(I3\ntp7\ncnumpy\ndtype\np8\n(S'f4'\np9\nI0\nI1\ntp10\nRp11\n(I3\n"
    b"S'<'\np12\nNNNI-1\nI-1\nI0\ntp13\nbI00\nS'\\x00\\x00\\x00\\x00\\x00\\x00\\x80?\\x00"
    b"\\x00\\x00@'\np14\ntp15\nbaS'caf\\xe9'\np16\na."
)


def embedding_values(num=NUM):
    """embeddings[i, k, :] == 10 * i + k, so a drawn embedding names its image."""
    values = 10 * np.arange(num)[:, None] + np.arange(K)[None, :]
    return np.broadcast_to(values[..., None], (num, K, D)).astype(np.float32)


def write_images(folder, num=NUM):
    """Image i is a 4x4 gray square of value 20 * i, under class folder c{i % 2}."""
    names = []
    for i in range(num):
        os.makedirs(folder / f"c{i % 2}", exist_ok=True)
        name = f"c{i % 2}/img{i}"
        Image.fromarray(np.full((4, 4), 20 * i, np.uint8)).save(folder / f"{name}.png")
        names.append(name if i % 2 else name + ".png")  # Some without extension.
    return names


@pytest.fixture
def npz_path(tmp_path):
    names = write_images(tmp_path / "images")
    path = tmp_path / "train.npz"
    np.savez(
        path,
        embeddings=embedding_values(),
        filenames=np.asarray(names),
        labels=np.arange(NUM) % 2,
        class_names=np.asarray(["even", "odd"]),
    )
    return str(path)


def image_ids(images):
    return np.rint((images[:, 0, 0, 0] + 1) * 127.5 / 20).astype(int)


def test_load_embedding_arrays(npz_path):
    arrays = emb.load_embedding_arrays(npz_path, channels=1)
    assert arrays.images.shape == (NUM, 4, 4, 1) and arrays.images.dtype == np.uint8
    assert arrays.embeddings.shape == (NUM, K, D) and arrays.embeddings.dtype == np.float32
    np.testing.assert_array_equal(arrays.images[:, 0, 0, 0], 20 * np.arange(NUM))
    np.testing.assert_array_equal(arrays.labels, np.arange(NUM) % 2)
    assert arrays.class_names == ("even", "odd") and arrays.skipped_files == 0
    resized = emb.load_embedding_arrays(npz_path, image_size=8)
    assert resized.images.shape == (NUM, 8, 8, 3)


def test_embedding_stream(npz_path):
    spec = f"embeddings:{npz_path}"
    dataset, info = make_text_dataset(spec, batch_size=5, seed=1, image_size=8)
    assert set(dataset.element_spec) == {
        "images",
        "embedding",
        "mismatched_embedding",
        "labels",
        "attributes",
    }
    assert dataset.element_spec["images"] == tf.TensorSpec([5, 8, 8, 3], tf.float32)
    assert dataset.element_spec["embedding"] == tf.TensorSpec([5, D], tf.float32)
    assert dataset.element_spec["mismatched_embedding"] == tf.TensorSpec([5, D], tf.float32)
    assert dataset.element_spec["labels"] == tf.TensorSpec([5], tf.int32)
    assert info.shape == (8, 8, 3) and info.num_examples == NUM
    assert info.class_names == ("even", "odd")
    full = [{k: v.numpy() for k, v in b.items()} for b in dataset.take(12)]
    for batch in full:
        ids = image_ids(batch["images"])
        np.testing.assert_array_equal(batch["labels"], ids % 2)
        own, k = np.divmod(batch["embedding"][:, 0].astype(int), 10)
        np.testing.assert_array_equal(own, ids)
        assert set(k.tolist()) <= set(range(K))
        other = batch["mismatched_embedding"][:, 0].astype(int) // 10
        assert np.all(other % 2 != ids % 2)  # Another class.
        np.testing.assert_array_equal(batch["attributes"], -1)  # Nothing known stated.
    resumed = make_text_dataset(spec, batch_size=5, seed=1, image_size=8, start_step=5)[0]
    for want, got in zip(full[5:], resumed.take(7), strict=True):
        for key in want:
            np.testing.assert_array_equal(want[key], got[key].numpy())


def test_without_labels_mismatch_is_another_image(tmp_path):
    names = write_images(tmp_path / "pictures", num=4)
    path = tmp_path / "e.npz"
    np.savez(
        path,
        embeddings=embedding_values(4)[:, 0],  # [N, D]: one embedding per image.
        filenames=np.asarray(names),
        images_dir=np.asarray("pictures"),
    )
    dataset, info = make_text_dataset(f"embeddings:{path}", batch_size=4, channels=1)
    assert info.class_names is None and info.shape == (4, 4, 1)
    for batch in dataset.take(5):
        ids = image_ids(batch["images"].numpy())
        np.testing.assert_array_equal(batch["labels"].numpy(), [-1] * 4)
        np.testing.assert_array_equal(batch["embedding"].numpy()[:, 0] // 10, ids)
        assert np.all(batch["mismatched_embedding"].numpy()[:, 0] // 10 != ids)


def save(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_bad_npz(tmp_path, npz_path):
    good = dict(np.load(npz_path))
    cases = [
        ("absent.npz", None, "does not exist"),
        ("noemb.npz", {"filenames": good["filenames"]}, "no 'embeddings'"),
        ("int.npz", {**good, "embeddings": np.ones((NUM, K, D), np.int64)}, "float"),
        ("short.npz", {**good, "filenames": good["filenames"][:3]}, "'filenames' must be 8"),
        ("lab.npz", {**good, "labels": np.full(NUM, 5)}, "out of range"),
        ("neg.npz", {**good, "labels": np.full(NUM, -1)}, ">= 0"),
        ("nan.npz", {**good, "embeddings": np.full((NUM, K, D), np.nan)}, "NaN"),
    ]
    for name, arrays, message in cases:
        path = str(tmp_path / name) if arrays is None else save(tmp_path / name, **arrays)
        with pytest.raises(UsageError, match=message):
            emb.load_embedding_arrays(path)
    (tmp_path / "corrupt.npz").write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="corrupt"):
        emb.load_embedding_arrays(str(tmp_path / "corrupt.npz"))
    missing = save(tmp_path / "m.npz", **{**good, "filenames": np.asarray(["gone"] * NUM)})
    with pytest.raises(UsageError, match=r"8 of 8 images .* missing"):
        emb.load_embedding_arrays(missing)
    elsewhere = save(tmp_path / "x.npz", **good, images_dir=np.asarray("nowhere"))
    with pytest.raises(UsageError, match="does not exist"):
        emb.load_embedding_arrays(elsewhere)


def test_corrupt_image_is_skipped_and_counted(npz_path, tmp_path):
    (tmp_path / "images" / "c0" / "img2.png").write_bytes(b"garbage")
    arrays = emb.load_embedding_arrays(npz_path)
    assert arrays.skipped_files == 1 and len(arrays.images) == NUM - 1
    assert "c0/img2.png" not in arrays.filenames.tolist()
    np.testing.assert_array_equal(arrays.embeddings[:, 0, 0] // 10, arrays.images[:, 0, 0, 0] // 20)


class RunsShell:
    """Unpickling it would run a shell command (what a malicious pickle does)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps([np.zeros(2), RunsShell(f"touch {marker}")])
    assert not marker.exists()
    with pytest.raises(UsageError, match=r"refusing to unpickle global (posix|os|nt)\.system"):
        emb.restricted_load(io.BytesIO(payload))
    assert not marker.exists()
    with pytest.raises(UsageError, match=r"(__builtin__|builtins)\.eval"):
        emb.restricted_load(io.BytesIO(pickle.dumps(CallsEval(), protocol=2)))
    with pytest.raises(UsageError, match=r"collections\.OrderedDict"):
        import collections

        emb.restricted_load(io.BytesIO(pickle.dumps(collections.OrderedDict(a=1))))
    with pytest.raises(UsageError, match="corrupt pickle"):
        emb.restricted_load(io.BytesIO(b"\x80\x04garbage"))
    with pytest.raises(UsageError, match="does not exist"):
        emb.restricted_load(str(tmp_path / "absent.pickle"))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_restricted_unpickler_loads_data(protocol):
    value = {
        "arrays": [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], np.int64)],
        "names": ["a/b", "c"],
        "scalar": np.float64(2.5),
        "numbers": (1, 2.0, None, True),
    }
    got = emb.restricted_load(io.BytesIO(pickle.dumps(value, protocol=protocol)))
    np.testing.assert_array_equal(got["arrays"][0], value["arrays"][0])
    assert got["arrays"][0].dtype == np.float32 and got["arrays"][1].dtype == np.int64
    assert got["names"] == ["a/b", "c"] and got["scalar"] == 2.5
    assert got["numbers"] == (1, 2.0, None, True)


def test_python2_pickle_with_latin1():
    got = emb.restricted_load(io.BytesIO(PY2_PICKLE))
    np.testing.assert_array_equal(got[0], np.array([0, 1, 2], np.float32))
    assert got[1] == "café"


def write_stackgan_pickles(folder, names):
    """StackGAN's three pickles: embeddings as a list of [K, D] arrays, as it ships them."""
    files = {}
    for key, value in (
        ("char-CNN-RNN-embeddings", list(embedding_values(len(names)))),
        ("filenames", [n.rsplit(".png", 1)[0] for n in names]),
        ("class_info", [int(i % 2) for i in range(len(names))]),
    ):
        files[key] = str(folder / f"{key}.pickle")
        with open(files[key], "wb") as f:
            pickle.dump(value, f, protocol=2)
    return files


def test_convert_stackgan_pickles_round_trip(tmp_path):
    names = write_images(tmp_path / "CUB" / "images")
    files = write_stackgan_pickles(tmp_path, names)
    out = emb.convert_stackgan_pickles(
        files["char-CNN-RNN-embeddings"],
        files["filenames"],
        str(tmp_path / "train" / "embeddings.npz"),
        class_info_pickle=files["class_info"],
        images_dir="../CUB/images",
    )
    with np.load(out) as written:
        assert written["embeddings"].shape == (NUM, K, D)
        assert written["filenames"].dtype.kind == "U"
        np.testing.assert_array_equal(written["labels"], np.arange(NUM) % 2)
    dataset, info = make_text_dataset(f"embeddings:{out}", batch_size=4, channels=1)
    assert info.num_examples == NUM and info.class_names is None
    batch = next(iter(dataset))
    ids = image_ids(batch["images"].numpy())
    np.testing.assert_array_equal(batch["embedding"].numpy()[:, 0] // 10, ids)
    np.testing.assert_array_equal(batch["labels"].numpy(), ids % 2)
    assert np.all(batch["mismatched_embedding"].numpy()[:, 0] // 10 % 2 != ids % 2)


def test_convert_refuses_and_checks_lengths(tmp_path):
    files = write_stackgan_pickles(tmp_path, [f"x{i}" for i in range(3)])
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(pickle.dumps(RunsShell(f"touch {marker}")))
    with pytest.raises(UsageError, match="system"):
        emb.convert_stackgan_pickles(str(evil), files["filenames"], str(tmp_path / "o.npz"))
    assert not marker.exists() and not (tmp_path / "o.npz").exists()
    short = tmp_path / "short.pickle"
    short.write_bytes(pickle.dumps(["a", "b"]))
    with pytest.raises(UsageError, match=r"3 embeddings .* but 2 filenames"):
        emb.convert_stackgan_pickles(
            files["char-CNN-RNN-embeddings"], str(short), str(tmp_path / "o.npz")
        )


def test_converter_main(tmp_path, capsys):
    files = write_stackgan_pickles(tmp_path, [f"x{i}" for i in range(3)])
    out = tmp_path / "out.npz"
    code = emb.main(["prog", f"--pickle={files['char-CNN-RNN-embeddings']}", f"--out={out}"])
    assert code == 0 and "(3, 3, 5)" in capsys.readouterr().out
    with np.load(out) as written:  # filenames and class_info found beside --pickle.
        assert written["labels"].tolist() == [0, 1, 0]
    assert emb.main(["prog", "--out=x.npz"]) == 2
    assert emb.main(["prog", "--bogus=1"]) == 2
    assert emb.main(["prog", f"--pickle={tmp_path}/none.pickle", f"--out={out}"]) == 2
    assert capsys.readouterr().err.count("error:") == 3
