"""MNIST on disk: IDX parsing with checksums, the stratified split, tf.data pipelines."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_cnn.errors import UserError

# The bundled MNIST: data/mnist/ in the repository, mnist_cnn/mnist_data/ once installed.
BUNDLED_DATA_DIRS = (
    Path(__file__).resolve().parent.parent / "data" / "mnist",
    Path(__file__).resolve().parent / "mnist_data",
)
BUNDLED_DATA_DIR = next((d for d in BUNDLED_DATA_DIRS if d.is_dir()), BUNDLED_DATA_DIRS[0])
IMAGE_SIZE = 28
NUM_CLASSES = 10

# SHA-256 of each *uncompressed* IDX file, so a gzip or a raw copy of the same data both pass.
CHECKSUMS = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
UNSIGNED_BYTE = 0x08


class Mnist(NamedTuple):
    """The four MNIST arrays, uint8 images (N, 28, 28) and uint8 labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an unsigned-byte IDX file into an array, checking magic and size."""
    if len(raw) < 4:
        raise UserError(f"{name}: not an IDX file (only {len(raw)} bytes)")
    zero1, zero2, dtype_code, ndim = raw[:4]
    if zero1 != 0 or zero2 != 0 or dtype_code != UNSIGNED_BYTE or not 1 <= ndim <= 3:
        raise UserError(f"{name}: wrong magic number 0x{raw[:4].hex()} (expected 0x000008NN)")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise UserError(f"{name}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise UserError(
            f"{name}: size mismatch: {len(raw)} bytes, the header {shape} needs {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def read_file_bytes(path: Path) -> bytes:
    """Read a file, transparently decompressing gzip, with one-line errors for unreadable files."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        # gzip raises EOFError for a truncated stream and BadGzipFile (an OSError) for garbage.
        raise UserError(f"{path}: cannot read: {error}") from None
    return raw


def load_idx(path: Path, sha256: str | None = None) -> np.ndarray:
    """Load one IDX file (gzip or raw), verifying its uncompressed SHA-256 when given."""
    raw = read_file_bytes(path)
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise UserError(f"{path}: checksum mismatch: this is not the canonical MNIST file")
    return parse_idx(raw, str(path))


def existing_idx(data_dir: Path, stem: str) -> Path | None:
    """The path of `stem` in `data_dir`, preferring the gzip copy over a raw one; None if absent."""
    candidates = (data_dir / f"{stem}.gz", data_dir / stem)
    return next((path for path in candidates if path.is_file()), None)


def find_idx(data_dir: Path, stem: str) -> Path:
    """The path of `stem` in `data_dir` (gzip or raw), or a one-line error."""
    path = existing_idx(data_dir, stem)
    if path is None:
        raise UserError(f"{data_dir / stem}[.gz]: file not found")
    return path


def has_mnist(data_dir: Path) -> bool:
    """Whether all four MNIST files are present in `data_dir` (gzip or raw)."""
    return all(existing_idx(data_dir, stem) is not None for stem in CHECKSUMS)


def load_from_dir(data_dir: Path) -> Mnist:
    """Load and verify the four MNIST files from `data_dir`."""
    arrays = [load_idx(find_idx(data_dir, stem), sha) for stem, sha in CHECKSUMS.items()]
    mnist = Mnist(*arrays)
    for images, labels in ((mnist.x_train, mnist.y_train), (mnist.x_test, mnist.y_test)):
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise UserError(f"{data_dir}: images {images.shape} do not match labels {labels.shape}")
    return mnist


def load_with_keras() -> Mnist:
    """Fall back to Keras' downloader, turning any failure into one actionable line."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # any download failure gets the same advice
        raise UserError(
            f"MNIST is missing from {BUNDLED_DATA_DIR} and the download failed "
            f"({type(error).__name__}); restore it with `git checkout -- data/mnist` "
            "or pass --data-dir DIR with the four IDX files"
        ) from None
    return Mnist(x_train, y_train, x_test, y_test)


def load_mnist(data_dir: Path | str | None = None) -> Mnist:
    """Load MNIST from `data_dir`, else the bundled copy, else Keras' download."""
    if data_dir is not None:
        return load_from_dir(Path(data_dir))
    if has_mnist(BUNDLED_DATA_DIR):
        return load_from_dir(BUNDLED_DATA_DIR)
    return load_with_keras()


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): `fraction` of each class goes to validation, chosen by `seed`."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"validation split must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    train_parts, val_parts = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = max(1, round(fraction * len(members)))
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    return rng.permutation(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def to_model_input(images: np.ndarray):
    """Scale uint8 images (N, 28, 28) to float32 in [0, 1] with a channel axis: (N, 28, 28, 1)."""
    import tensorflow as tf

    return tf.cast(images, tf.float32)[..., tf.newaxis] / 255.0


AUGMENTATIONS = ("none", "shift", "affine")
MAX_SHIFT = 0.08  # of the image size: about 2 pixels each way
MAX_ROTATION = 10 / 360  # of a full turn: 10 degrees each way
MAX_ZOOM = 0.1


def make_augmenter(kind: str, seed: int):
    """Random shifts ("shift"), or shifts after small rotations and zooms ("affine")."""
    import keras
    from keras import layers

    # Handwriting is never centred exactly; slant and size vary from writer to writer too.
    shift = layers.RandomTranslation(MAX_SHIFT, MAX_SHIFT, fill_mode="constant", seed=seed)
    if kind == "shift":
        return shift
    if kind != "affine":
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, not {kind!r}")
    return keras.Sequential(
        [
            layers.RandomRotation(MAX_ROTATION, fill_mode="constant", seed=seed + 1),
            layers.RandomZoom(MAX_ZOOM, fill_mode="constant", seed=seed + 2),
            shift,
        ]
    )


def degrade_in_pipeline(dataset, fraction: float, seed: int):
    """Batches of uint8 images (B, 28, 28) with `fraction` of them degraded (mnist_cnn.degrade,
    NumPy and OpenCV through tf.numpy_function), each batch with its own seed from `seed`."""
    import tensorflow as tf

    from mnist_cnn.degrade import degrade_batch

    def degrade(images: np.ndarray, batch_seed: np.int64) -> np.ndarray:
        return degrade_batch(images, np.random.default_rng(int(batch_seed)), fraction)

    def apply(columns, batch_seed):
        images, *rest = columns
        degraded = tf.numpy_function(degrade, [images, batch_seed], tf.uint8, stateful=False)
        return (tf.ensure_shape(degraded, images.shape), *rest)

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE)


def make_dataset(
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    augment: str = "none",
    weights: np.ndarray | None = None,
    degrade: float = 0.0,
):
    """A batched, prefetched tf.data pipeline of (images, targets[, weights]) for Keras: uint8
    images (N, 28, 28) scaled to float32 (N, 28, 28, 1); targets and per-image loss weights
    (N,) passed through. Shuffled each epoch when `shuffle_seed` is given; `degrade` is the
    share of images put through one of mnist_cnn.degrade's degradations each epoch."""
    import tensorflow as tf

    columns = (images, targets) if weights is None else (images, targets, weights)
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if degrade > 0:
        dataset = degrade_in_pipeline(dataset, degrade, shuffle_seed or 0)
    # Scaling whole batches after batching is one vectorised op instead of one per image.
    dataset = dataset.map(
        lambda x, *rest: (to_model_input(x), *rest), num_parallel_calls=tf.data.AUTOTUNE
    )
    if augment != "none":
        augmenter = make_augmenter(augment, shuffle_seed or 0)
        dataset = dataset.map(
            lambda x, *rest: (augmenter(x, training=True), *rest),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return untuned(dataset.prefetch(tf.data.AUTOTUNE))


def untuned(dataset):
    """`dataset` with tf.data's autotuning off: its parallel maps and prefetching keep their
    starting sizes (as many parallel calls as CPU cores, up to 16). With autotuning on,
    closing an epoch's iterator waited 6 to 10 s for its planning thread, the CPU idle, in a
    quarter to a half of the epochs on 2 cores (seen with py-spy); off, the steps run as fast
    (docs/training.md, "The model")."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Digit labels (N,) -> float32 one-hot targets (N, 10)."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels, np.int64)]
