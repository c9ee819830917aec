"""CycleGAN's run side: two domains of data, translation pictures, both directions served and
scored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from zoo import registry
from zoo.core.images import image_grid
from zoo.data import IDX_NAMES, DatasetInfo, load_domain_images, make_domain_dataset
from zoo.errors import UsageError
from zoo.eval.translation import evaluate_translation
from zoo.models.cyclegan.model import CycleGAN, stand_in_images
from zoo.models.cyclegan.networks import CycleGANConfig
from zoo.models.task import SignatureTable, Task, dataset_options
from zoo.run import RunConfig

SIGNATURES = ("a_to_b", "b_to_a")

# The defaults on 28 px grayscale data (Fashion-MNIST, MNIST), measured on sandal <-> sneaker
# with `python bench/quality.py --model=cyclegan` (README, Evaluation, has the table):
# - 32 px, 1 channel: 64 times fewer pixels than the paper's 256 px RGB, for images that carry
#   no more detail than 28 px anyway.
# - identity_weight=0: the identity term 0.5·λ·‖G(b) − b‖₁ pulls G towards the identity, which
#   is right for colour changes (the paper's paintings) and wrong for a change of shape: with it
#   F turned sneakers into sandals 37% of the time (2000 steps), without it 85% (1500 steps).
# - generator_filters=32: a quarter of the residual blocks' work (they are most of the step at
#   32 px), with an 8 × 8 × 128 bottleneck for a 32 × 32 × 1 image; translation no worse.
# - batch 4: at this size the step is mostly fixed costs: 4 images of this config train at
#   13-14 images/s where the paper's config (64 filters, batch 1) trains at 3 (same load).
# - jitter=False, flip=False: Fashion-MNIST and MNIST are centred and aligned (the shoes face
#   one way: 99.7% of the sneakers and 92.6% of the sandals are nearer the class's mean image
#   than its mirror image), and the test images are neither shifted nor mirrored. The paper's jitter
#   (bilinear resize 32 -> 36, random crop back) blurs each training image and its flips train
#   G and F on mirrored shoes they are never shown; without either, 3000 steps of 4 translate
#   0.831 / 0.951 (FD 2.8 / 5.0) where they translated 0.738 / 0.867 (FD 9.7), cycle L1
#   0.101 / 0.071 against 0.103 / 0.079 (A→B / B→A).
# - discriminator_filters=32: PatchGANs of C32-C64-C128-C256 (a quarter of the weights, 0.69 M
#   values each): on 3000 steps of 4, 0.864 / 0.955, cycle 0.096 / 0.068, FD 2.7 / 5.0, against
#   0.831 / 0.951, 0.101 / 0.071 with 64 filters (one run each, seed 0), and 571 s quiet.
#   At 6000 steps (the preset cyclegan_sandal_sneaker, 949 s quiet): 0.906 / 0.971, cycle
#   0.088 / 0.065.
# - downsamplings stays the paper's 2: with 1 (R64 blocks at 16 x 16; `--config=downsamplings=1`)
#   3000 steps of 4 translate 0.927 / 0.988, cycle 0.083 / 0.060, in 449 s against 571 s, but
#   the translated sandals are further from real ones (FD 9.4 against 5.0; one run, seed 0).
# - input_norm=False: no instance norm after G's first convolution, which made G blind to the
#   input's contrast (a shoe at 70% of its contrast came out within 0.004 of the original, so
#   F(G(a)) could not bring back how bright a sandal was, and 95% of A's cycle error was on the
#   shoe). 3000 steps of 4: 0.927 / 0.983, cycle 0.078 / 0.058, FD 2.2 / 4.9 against 0.864 /
#   0.955, 0.096 / 0.068, 2.7 / 5.0 with it; 6000 steps: 0.953 / 0.982, cycle 0.069 / 0.051
#   (one run each, seed 0; `python bench/quality.py --model=cyclegan`).
# - discriminator_filters=16 (PatchGANs of C16-C32-C64-C128) and cycle_weight=20: 3000 steps of
#   4 translate 0.945 / 0.982, cycle 0.065 / 0.046, FD 2.4 / 6.8 in 830 s quiet, against
#   0.927 / 0.983, 0.078 / 0.058, 2.2 / 4.9 with 32 filters and λ = 10; 16 filters alone: 0.955 /
#   0.971, 0.073 / 0.052, FD 1.7 / 4.3. λ = 40 (16 filters): 0.894 / 0.960, 0.059 / 0.043,
#   FD 4.1 / 11.2: past 20 the cycle error falls little and sandal -> sneaker accuracy goes
#   (one run each, seed 0). The cycle goal (≤ 0.05 both ways) is still not met for A.
# The paper's config, 2000 steps of 1: 0.573 / 0.365, cycle 0.108 / 0.080. Generator EMA
# (0.999) stays off: with jitter it lowered the cycle error by 0.005 and B→A accuracy by 0.05.
SMALL_GRAY = dict(
    image_size=32,
    channels=1,
    generator_filters=32,
    discriminator_filters=16,
    cycle_weight=20.0,
    identity_weight=0.0,
    jitter=False,
    flip=False,
    input_norm=False,
)
SMALL_GRAY_BATCH = 4


@registry.register("cyclegan")
class CycleGANTask(Task):
    """Unpaired (a, b) data from `--domain_a`/`--domain_b`; rows of a, G(a), F(G(a)), b, F(b),
    G(F(b)); `a_to_b` (also `serving_default`) and `b_to_a` served; translation metrics."""

    model_class = CycleGAN
    # The paper's config (256 px RGB) and batch 1 (instance norm, a history pool of single
    # images), but `SMALL_GRAY` and `SMALL_GRAY_BATCH` on the 28 px grayscale IDX datasets
    # (Fashion-MNIST, MNIST).
    batch_size = 1
    dataset_defaults: ClassVar[dict[str, dict[str, Any]]] = {name: SMALL_GRAY for name in IDX_NAMES}
    dataset_batch_sizes: ClassVar[dict[str, int]] = {name: SMALL_GRAY_BATCH for name in IDX_NAMES}
    # The budget of its quality figures there (`bench/quality.py --model=cyclegan`).
    dataset_train_steps: ClassVar[dict[str, int]] = {name: 3000 for name in IDX_NAMES}

    def __init__(self) -> None:
        self._real: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def training_dataset(
        self, rc: RunConfig, config: CycleGANConfig, *, batch_size: int, start_step: int
    ) -> tuple[tf.data.Dataset, DatasetInfo]:
        """Unpaired (a, b) batches from `rc.dataset` and `rc.domain_a` / `rc.domain_b`."""
        if rc.classes:
            raise UsageError("cyclegan picks its classes with --domain_a/--domain_b, not --classes")
        options = dataset_options(rc, batch_size=batch_size, start_step=start_step)
        del options["classes"]
        return make_domain_dataset(
            rc.dataset,
            domain_a=rc.domain_a,
            domain_b=rc.domain_b,
            image_size=config.image_size,
            channels=config.channels,
            **options,
        )

    def real_images(
        self, model: CycleGAN, num: int, rc: RunConfig | None, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """`num` fixed real images of each domain (test split when there is one), at the
        model's size; smooth random images stand in without a run (`rc=None`)."""
        if rc is None:
            return stand_in_images(num, model.data_shape, seed)
        c = model.config
        key = (rc.dataset, rc.domain_a, rc.domain_b, rc.data_dir, num, seed, *model.data_shape)
        if key not in self._real:
            self._real[key] = load_domain_images(
                rc.dataset,
                num,
                domain_a=rc.domain_a,
                domain_b=rc.domain_b,
                seed=seed,
                data_dir=rc.data_dir,
                image_size=c.image_size,
                channels=c.channels,
            )
        return self._real[key]

    def evaluate(self, model: CycleGAN, evaluator: object, num_samples: int, seed: int = 0) -> dict:
        """Translation metrics both ways on real test images of the two domains
        (`zoo.eval.translation.evaluate_translation`): keys `a_to_b_*` and `b_to_a_*`."""
        rc = evaluator.rc
        return evaluate_translation(
            evaluator,
            model.generator_ab,
            model.generator_ba,
            lambda num: self.real_images(model, num, rc, seed),
            num_samples,
        )

    def sample_picture(
        self,
        model: CycleGAN,
        num: int,
        rc: RunConfig | None = None,
        centres: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows of a, G(a), F(G(a)), b, F(b), G(F(b)) on fixed real test images (num // 6 rows)."""
        del centres
        a, b = self.real_images(model, max(1, num // 6), rc)
        g, f = model.generator_ab, model.generator_ba
        fake_b = g(a, training=False)
        fake_a = f(b, training=False)
        columns = [a, fake_b, f(fake_b, training=False), b, fake_a, g(fake_a, training=False)]
        tiles = np.stack([np.asarray(tf.cast(x, tf.float32)) for x in columns], axis=1)
        return image_grid(tiles.reshape(-1, *tiles.shape[2:]), columns=len(columns))

    def representative_inputs(
        self,
        model: CycleGAN,
        num: int,
        seed: int = 0,
        rc: RunConfig | None = None,
        signature: str | None = "a_to_b",
    ) -> dict[str, np.ndarray]:
        """Real images of the signature's input domain (A for `a_to_b`, B for `b_to_a`)."""
        signature = signature or "a_to_b"
        if signature not in (*SIGNATURES, "serving_default"):
            raise ValueError(f"cyclegan has no signature {signature!r}")
        a, b = self.real_images(model, num, rc, seed)
        return {"images": b if signature == "b_to_a" else a}

    def calibration_samples(self, model: CycleGAN) -> int:
        """Real images for int8 calibration: as many pixels as 64 images of 32 px
        (64 · 32² / size²), between 4 and 64; 4 at 128 and 256 px.

        The calibrator records each activation tensor's min and max. Every tensor of the ResNet
        generator is a feature map of at least (size/4)² positions per image, so a few images
        give it many values per tensor, while more images only widen the ranges (coarser int8
        steps). Measured on a 256 px sandal -> sneaker run (int8 against the SavedModel on 4
        held-out images): max abs error 1.94, 1.94, 1.95, 1.96, 1.98 and mean 0.195, 0.210,
        0.216, 0.217, 0.247 with 1, 2, 4, 8, 64 images. Calibration runs single-threaded at
        about 4 s per 256 px image on two cores: 4 images took 15 s per direction, 64 images
        503 s (under load 6), which was most of a 25-minute export.
        """
        size = model.config.image_size
        return int(min(64, max(4, 64 * 32**2 // size**2)))

    def serving_signatures(self, model: CycleGAN) -> SignatureTable:
        """`a_to_b` (G, also `serving_default`) and `b_to_a` (F): `images` in, `images` out."""
        c = model.config
        spec = {
            "images": tf.TensorSpec(
                [None, c.image_size, c.image_size, c.channels], tf.float32, name="images"
            )
        }

        def translator(network: keras.Model) -> Callable[..., dict]:
            def translate(images: tf.Tensor) -> dict[str, tf.Tensor]:
                return {"images": tf.cast(network(images, training=False), tf.float32)}

            return translate

        return {
            "a_to_b": (translator(model.generator_ab), dict(spec)),
            "b_to_a": (translator(model.generator_ba), dict(spec)),
        }
