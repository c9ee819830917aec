"""ganzoo: a TensorFlow/Keras model zoo of generative adversarial networks."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="ganzoo",
    version="0.1.0",
    description="GAN model zoo for TensorFlow 2 / Keras 3: train anywhere, serve, ship to phones",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["zoo", "zoo.*", "export", "export.*"]),
    py_modules=["train_main"],
    # The built presets (zoo/presets/<name>/: weights, golden batch, card, grid, manifest).
    package_data={"zoo.presets": ["*/*.json", "*/*.npz", "*/*.md", "*/*.png"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "absl-py>=2.0",
        "pillow>=10.0",
        "tensorboard>=2.16",
        "numpy>=1.26",
    ],
    extras_require={
        "export": ["ai-edge-litert>=1.0"],
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "pytest-timeout>=2.2",
            "ruff>=0.5",
            "import-linter>=2.1",
            "ai-edge-litert>=1.0",
            "tensorflow-serving-api",
        ],
    },
    entry_points={"console_scripts": ["ganzoo-train=train_main:run"]},
    license="Apache-2.0",
)
