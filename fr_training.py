"""Fine-tune the top of FaceNet with the triplet loss and online triplet mining.

FaceNet (Schroff et al. 2015) is trained with the triplet loss on mini-batches of P identities x
K photos each, the triplets being chosen *online*, inside each batch (section 3.2; the mining
itself is in :mod:`fr_triplets`). This module does that for real, on a small scale: it
fine-tunes the last Inception-ResNet block(s) and the 128-unit Bottleneck of the pretrained
network on the celebrity *train* photos and measures the result on held-out faces.

What is trained, and why it is fast
-----------------------------------
The network is split at the input of the last ``trainable_blocks`` Block8 blocks::

    trunk (frozen): stem ... Block8_5      ->  3 x 3 x 1792 feature map
    head (trained): Block8_6, AvgPool, Dropout, Bottleneck (+ its BatchNorm, frozen)

Every BatchNorm layer stays in inference mode (frozen moving statistics and offsets): with
batches of 40 faces of 5 people, batch statistics would be a poor estimate of the ones learned
on millions of faces. Because the trunk is frozen and deterministic in inference mode, each
(augmented) view of each training photo goes through it exactly once; the training steps then
run only the head on the cached 3 x 3 x 1792 maps: about a tenth of a second for a batch of 40
faces on two CPU cores, where a pass through the whole network would take several seconds.

Augmentation is therefore a fixed set of views per photo, drawn once with a seeded generator:
the crop itself, its mirror image and ``random_crops`` random square sub-crops (80-95 % of the
side, randomly mirrored) resized back to 160 x 160.

The head is a Keras model that *shares its layers* with the full model, so after training the
full model (and ``fr_utils.encode_faces``) uses the fine-tuned weights. :func:`fine_tune` works on
a copy by default: the caller's pretrained model is left untouched.

Evaluation
----------
:func:`compare_heads` puts numbers side by side for the pretrained and the fine-tuned head:
the threshold with the best accuracy on all train pairs, then on the val photos the area under
the ROC curve, the accuracy at that train threshold and the triplet loss, and the same AUC and
accuracy on a fixed sample of LFW pairs (people the model never saw during fine-tuning).

Example (what the notebook section runs; ``python fr_training.py --help`` runs it from a shell)::

    tuned = fine_tune(model, train_crops, train_names, steps=60, alpha=1.0)
    pretrained_head = split_facenet(model).head
    val = (run_trunk(val_crops, tuned.trunk), val_names)
    train = (tuned.training_set.original_features, train_names_of_those_features)
    compare_heads({"pretrained": pretrained_head, "fine-tuned": tuned.head}, train, val)
"""

import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

import fr_eval
import fr_utils  # imports TensorFlow quietly
import fr_triplets
import inception_blocks_v2

tf = fr_utils.tf
import keras  # noqa: E402  (after TensorFlow, imported quietly by fr_utils)

__all__ = [
    "MINING",
    "trunk_boundary",
    "SplitFaceNet",
    "split_facenet",
    "clone_facenet",
    "augment_views",
    "run_trunk",
    "embed_features",
    "TrainingSet",
    "make_training_set",
    "pk_batch_indices",
    "TrainingHistory",
    "train_head",
    "FineTuned",
    "fine_tune",
    "detect_and_crop",
    "load_split_crops",
    "PairSample",
    "lfw_pair_sample",
    "load_pair_crops",
    "LFW_DETECTION_SCALE",
    "mean_triplet_loss",
    "embedding_metrics",
    "pair_metrics",
    "compare_heads",
    "main",
]

# Online mining strategies: name -> function (labels, embeddings, alpha) -> (loss, fraction_active).
MINING = {
    "semihard": fr_triplets.batch_semihard_triplet_loss,
    "batch_all": fr_triplets.batch_all_triplet_loss,
}


# ---------------------------------------------------------------------------------------------
# Splitting the network into a frozen trunk and a trainable head
# ---------------------------------------------------------------------------------------------
def trunk_boundary(trainable_blocks=1):
    """Name of the layer whose output is the input of the trainable head.

    ``trainable_blocks`` counts Block8 blocks from the top: 1 trains Block8_6 only (the trunk
    ends at ``Block8_5_Activation``), 6 trains all of them (the trunk ends at ``Mixed_7a``).
    """
    if isinstance(trainable_blocks, bool) or not isinstance(trainable_blocks, (int, np.integer)) \
            or not 1 <= trainable_blocks <= 6:
        raise ValueError(f"trainable_blocks must be an integer from 1 to 6 (Block8 blocks), got {trainable_blocks!r}")
    return "Mixed_7a" if trainable_blocks == 6 else f"Block8_{6 - int(trainable_blocks)}_Activation"


@dataclass
class SplitFaceNet:
    """A FaceNet model seen as trunk -> head; both share the layers (weights) of ``model``."""

    model: keras.Model
    trunk: keras.Model  # images (m, 160, 160, 3), prewhitened -> feature maps (m, 3, 3, 1792)
    head: keras.Model  # feature maps -> raw encodings (m, 128), not normalised
    boundary: str  # name of the last trunk layer


def split_facenet(model, trainable_blocks=1):
    """Split ``model`` at :func:`trunk_boundary` into a trunk and a head sharing its layers.

    ``head(trunk(x))`` equals ``model(x)`` exactly, and training the head changes ``model``.
    """
    boundary = trunk_boundary(trainable_blocks)
    cut = model.get_layer(boundary).output
    trunk = keras.Model(model.input, cut, name=f"trunk_to_{boundary}")
    head = keras.Model(cut, model.output, name=f"head_after_{boundary}")
    return SplitFaceNet(model=model, trunk=trunk, head=head, boundary=boundary)


def clone_facenet(model):
    """A new FaceNet with the same architecture and a copy of ``model``'s weights."""
    copy = inception_blocks_v2.faceRecoModel(tuple(model.input_shape[1:]), embedding_size=model.output_shape[-1])
    copy.set_weights(model.get_weights())
    return copy


# ---------------------------------------------------------------------------------------------
# Augmented views and cached trunk features
# ---------------------------------------------------------------------------------------------
def _random_square_crop(crop, rng, scale_range):
    """A random square sub-crop of ``crop`` (side a fraction of the crop's), resized back."""
    size = crop.shape[0]
    side = int(round(size * rng.uniform(*scale_range)))
    top, left = rng.integers(0, size - side + 1, size=2)
    patch = Image.fromarray(crop[top:top + side, left:left + side])
    out = np.asarray(patch.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out[:, ::-1] if rng.random() < 0.5 else out


def augment_views(crops, random_crops=1, scale_range=(0.80, 0.95), seed=0):
    """Fixed augmented views of each face crop: itself, its mirror, and random sub-crops.

    Parameters
    ----------
    crops : ndarray, shape (n, 160, 160, 3), uint8
    random_crops : int
        Number of random square sub-crops per photo (side drawn in ``scale_range`` of the
        crop's side, position uniform, mirrored with probability 1/2), resized back to 160.
    seed : int
        Seed of the numpy generator that draws the sub-crops.

    Returns
    -------
    views : ndarray, shape (n * (2 + random_crops), 160, 160, 3), uint8
        Photo-major: the views of photo i are rows ``i * v .. i * v + v - 1``, the first
        being the unchanged crop.
    photo : ndarray of int, shape (n * (2 + random_crops),)
        Index of the photo each view comes from.
    """
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1] != crops.shape[2] or crops.shape[3] != 3:
        raise ValueError(f"crops must have shape (n, side, side, 3), got {crops.shape}")
    if random_crops < 0:
        raise ValueError(f"random_crops must be >= 0, got {random_crops}")
    rng = np.random.default_rng(seed)
    views, photo = [], []
    for index, crop in enumerate(crops):
        views += [crop, crop[:, ::-1]]
        views += [_random_square_crop(crop, rng, scale_range) for _ in range(random_crops)]
        photo += [index] * (2 + random_crops)
    empty = np.zeros((0,) + crops.shape[1:], np.uint8)
    return (np.stack(views).astype(np.uint8) if views else empty), np.asarray(photo, dtype=np.int64)


_COMPILED_FORWARD = weakref.WeakKeyDictionary()


def _compiled_forward(model):
    """``model(x, training=False)`` as one traced TensorFlow graph (traced once per model).

    Calling a 400-layer Keras model eagerly runs it layer by layer from Python; the traced graph
    runs the same operations about twice as fast on a CPU, with identical results.
    """
    forward = _COMPILED_FORWARD.get(model)
    if forward is None:
        spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)
        # A weak reference, so that the cached function does not keep the model alive.
        model_ref = weakref.ref(model)
        forward = tf.function(lambda x: model_ref()(x, training=False), input_signature=[spec])
        _COMPILED_FORWARD[model] = forward
    return forward


def run_trunk(crops, trunk, batch_size=32):
    """Feature maps of face crops (pixel values 0-255) through the frozen trunk, float32."""
    crops = np.asarray(crops)
    forward = _compiled_forward(trunk)
    parts = [np.asarray(forward(tf.constant(fr_utils.prewhiten(crops[start:start + batch_size]))))
             for start in range(0, len(crops), batch_size)]
    if not parts:
        return np.zeros((0,) + tuple(trunk.output_shape[1:]), np.float32)
    return np.concatenate(parts).astype(np.float32)


def embed_features(features, head, batch_size=256):
    """Unit-length (n, 128) encodings of trunk feature maps through ``head`` (inference mode)."""
    features = np.asarray(features, np.float32)
    parts = [np.asarray(head(features[start:start + batch_size], training=False))
             for start in range(0, len(features), batch_size)]
    if not parts:
        return np.zeros((0, head.output_shape[-1]), np.float32)
    return fr_utils.l2_normalize(np.concatenate(parts))


@dataclass
class TrainingSet:
    """Cached trunk features of every augmented view of the training photos."""

    features: np.ndarray  # (n_views, 3, 3, 1792) float32
    labels: np.ndarray  # (n_views,) int identity index into ``names``
    photo: np.ndarray  # (n_views,) index of the source photo
    is_original: np.ndarray  # (n_views,) bool: the unchanged crop (one per photo)
    names: list  # identity names, sorted

    @property
    def original_features(self):
        """Features of the unchanged crops, one per photo, in photo order."""
        return self.features[self.is_original]

    @property
    def original_labels(self):
        return self.labels[self.is_original]


def _label_indices(labels):
    names = sorted(set(map(str, labels)))
    index = {name: i for i, name in enumerate(names)}
    return names, np.array([index[str(label)] for label in labels], dtype=np.int64)


def make_training_set(crops, labels, trunk, random_crops=1, seed=0, batch_size=32):
    """Augment ``crops`` (see :func:`augment_views`) and run every view through ``trunk`` once."""
    if len(crops) != len(labels):
        raise ValueError(f"{len(crops)} crops but {len(labels)} labels")
    names, label_index = _label_indices(labels)
    views, photo = augment_views(crops, random_crops=random_crops, seed=seed)
    is_original = np.zeros(len(photo), dtype=bool)
    is_original[::2 + random_crops] = True
    return TrainingSet(
        features=run_trunk(views, trunk, batch_size),
        labels=label_index[photo],
        photo=photo,
        is_original=is_original,
        names=names,
    )


# ---------------------------------------------------------------------------------------------
# P x K batches and the training loop
# ---------------------------------------------------------------------------------------------
def pk_batch_indices(labels, photo, identities, photos_per_identity, rng):
    """Row indices of one P x K batch: ``identities`` people, ``photos_per_identity`` each.

    The K rows of a person come from K different photos when the person has that many (a
    random view of each), so that positives are not merely augmentations of the anchor.
    Rows are grouped by person.
    """
    labels, photo = np.asarray(labels), np.asarray(photo)
    people = np.unique(labels)
    if identities > len(people):
        raise ValueError(f"a batch of {identities} identities, but the data holds only {len(people)}")
    if identities < 2 or photos_per_identity < 2:
        raise ValueError("a triplet batch needs at least 2 identities and 2 photos per identity")
    rows = []
    for person in rng.choice(people, size=identities, replace=False):
        photos = np.unique(photo[labels == person])
        chosen = rng.choice(photos, size=photos_per_identity, replace=len(photos) < photos_per_identity)
        for p in chosen:
            rows.append(rng.choice(np.flatnonzero(photo == p)))
    return np.asarray(rows, dtype=np.int64)


@dataclass
class TrainingHistory:
    """Per training step: the mined triplet loss and the fraction of active triplets."""

    loss: np.ndarray
    fraction_active: np.ndarray
    mining: str
    seconds: float = 0.0
    trained_parameters: int = 0  # number of weights the optimiser updated


def _batchnorm_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def train_head(head, training_set, steps=60, identities=5, photos_per_identity=8, mining="semihard",
               alpha=0.2, learning_rate=5e-5, seed=0):
    """Train ``head`` in place with Adam on P x K batches of cached features and online mining.

    Parameters
    ----------
    head : keras.Model
        From :func:`split_facenet`. Its BatchNorm layers are kept in inference mode (frozen);
        dropout is active. Every other weight of the head is trained.
    training_set : TrainingSet
    steps : int
        Number of Adam steps (one P x K batch each).
    identities, photos_per_identity : int
        P and K.
    mining : {"semihard", "batch_all"}
        FaceNet semi-hard negatives, or every active triplet of the batch.
    alpha : float
        Triplet margin on squared distances between unit encodings.

    Returns
    -------
    TrainingHistory
    """
    if mining not in MINING:
        raise ValueError(f"mining must be one of {sorted(MINING)}, got {mining!r}")
    loss_of_batch = MINING[mining]
    rng = np.random.default_rng(seed)
    batchnorms = _batchnorm_layers(head)
    saved_flags = [layer.trainable for layer in batchnorms]
    for layer in batchnorms:
        # A Keras 3 BatchNormalization that is not trainable runs in inference mode even when
        # called with training=True, and its offsets are not updated.
        layer.trainable = False
    try:
        variables = head.trainable_variables
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        optimizer.build(variables)

        @tf.function(reduce_retracing=True)
        def step(features, labels):
            with tf.GradientTape() as tape:
                encodings = tf.math.l2_normalize(head(features, training=True), axis=-1)
                loss, fraction_active = loss_of_batch(labels, encodings, alpha)
            gradients = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(gradients, variables))
            return loss, fraction_active

        start = time.perf_counter()
        losses, fractions = [], []
        for _ in range(steps):
            rows = pk_batch_indices(training_set.labels, training_set.photo, identities, photos_per_identity, rng)
            loss, fraction = step(tf.constant(training_set.features[rows]), tf.constant(training_set.labels[rows]))
            losses.append(float(loss))
            fractions.append(float(fraction))
        seconds = time.perf_counter() - start
    finally:
        for layer, flag in zip(batchnorms, saved_flags):
            layer.trainable = flag
    trained = int(sum(np.prod(v.shape) for v in variables))
    return TrainingHistory(np.asarray(losses), np.asarray(fractions), mining, seconds, trained)


@dataclass
class FineTuned:
    """What :func:`fine_tune` returns."""

    model: keras.Model  # the fine-tuned full network (a copy unless copy=False)
    trunk: keras.Model  # its frozen trunk (same weights as the pretrained one)
    head: keras.Model  # its trained head
    history: TrainingHistory
    training_set: TrainingSet
    settings: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)  # wall time of each stage


def fine_tune(model, train_crops, train_labels, steps=60, trainable_blocks=1, random_crops=1,
              identities=5, photos_per_identity=8, mining="semihard", alpha=0.2, learning_rate=5e-5,
              seed=0, copy=True, training_set=None):
    """Fine-tune the top of FaceNet on face crops with the triplet loss (see the module notes).

    Parameters
    ----------
    model : keras.Model
        The pretrained FaceNet (``fr_utils.load_facenet()``).
    train_crops : ndarray (n, 160, 160, 3) uint8, and train_labels : n identity names
    steps : int
        Adam steps; longer training is just a larger number here.
    trainable_blocks : int
        Block8 blocks trained, counted from the top (1 = Block8_6), plus the Bottleneck.
    random_crops : int
        Random sub-crops per photo, besides the crop and its mirror.
    seed : int
        Seeds the augmentation, the batches, the dropout masks (``keras.utils.set_random_seed``,
        which also reseeds Python's, numpy's and TensorFlow's global generators).
    copy : bool
        If true (default) a copy of ``model`` is trained and ``model`` is left untouched.
    training_set : TrainingSet, optional
        Cached features from an earlier call (``result.training_set``) with the same
        ``trainable_blocks``, to skip the trunk pass.

    Returns
    -------
    FineTuned
    """
    seconds = {}
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    tuned = clone_facenet(model) if copy else model
    split = split_facenet(tuned, trainable_blocks)
    seconds["copy"] = time.perf_counter() - start

    start = time.perf_counter()
    if training_set is None:
        training_set = make_training_set(train_crops, train_labels, split.trunk, random_crops, seed)
    elif training_set.features.shape[1:] != tuple(split.trunk.output_shape[1:]):
        raise ValueError("training_set was made with another trainable_blocks")
    seconds["trunk features"] = time.perf_counter() - start

    history = train_head(split.head, training_set, steps, identities, photos_per_identity, mining, alpha,
                         learning_rate, seed)
    seconds["training"] = history.seconds
    settings = dict(steps=steps, trainable_blocks=trainable_blocks, random_crops=random_crops,
                    identities=identities, photos_per_identity=photos_per_identity, mining=mining,
                    alpha=alpha, learning_rate=learning_rate, seed=seed, boundary=split.boundary,
                    views=len(training_set.labels), photos=int(training_set.is_original.sum()))
    return FineTuned(tuned, split.trunk, split.head, history, training_set, settings, seconds)


# ---------------------------------------------------------------------------------------------
# Face crops of the celebrity photos and of LFW pairs
# ---------------------------------------------------------------------------------------------
def _downscale(image, scale):
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def detect_and_crop(paths, detection_scale=1.0, batch_size=32):
    """Largest face of each photo, cropped to 160 x 160 (MTCNN via ``fr_utils``).

    ``detection_scale`` < 1 runs the detector on a downscaled copy of each photo (its boxes are
    scaled back and the crop is cut from the full-size photo): much faster when every face is
    large, as in LFW.

    Returns ``(crops, kept, failures)``: an (n, 160, 160, 3) uint8 array, the paths that gave
    a face (in input order) and a dict path -> error for the others.
    """
    if not 0 < detection_scale <= 1:
        raise ValueError(f"detection_scale must be in (0, 1], got {detection_scale}")
    paths = [Path(p) for p in paths]
    crops, kept, failures = [], [], {}
    for start in range(0, len(paths), batch_size):
        chunk, images = [], []
        for path in paths[start:start + batch_size]:
            try:
                images.append(fr_utils.load_image(path))
                chunk.append(path)
            except fr_utils.FaceRecognitionError as exc:
                failures[path] = exc
        small = images if detection_scale == 1 else [_downscale(image, detection_scale) for image in images]
        for path, image, faces in zip(chunk, images, fr_utils.detect_faces_batch(small)):
            if not faces:
                failures[path] = fr_utils.NoFaceError(f"{path}: no face found")
                continue
            box = tuple(v / detection_scale for v in faces[0].box)
            try:
                crops.append(fr_utils.crop_face(image, box))
                kept.append(path)
            except fr_utils.FaceRecognitionError as exc:
                failures[path] = exc
    side = fr_utils.FACE_SIZE
    return (np.stack(crops) if crops else np.zeros((0, side, side, 3), np.uint8)), kept, failures


def load_split_crops(split, images_dir=None):
    """Face crops and person names of ``images/<split>/<person>/*.jpg`` (sorted paths).

    Raises ``fr_utils.NoFaceError`` if a photo gives no face (the demo photos all do).
    """
    folder = Path(images_dir or fr_utils.IMAGES_DIR) / split
    paths = fr_utils.list_images(folder)
    crops, kept, failures = detect_and_crop(paths)
    if failures:
        raise fr_utils.NoFaceError(f"no face in {len(failures)} photo(s) of {folder}: {sorted(map(str, failures))[:3]}")
    return crops, [p.parent.name for p in kept]


@dataclass
class PairSample:
    """A fixed sample of verification pairs: image paths (relative to the image root) and truth."""

    path1: tuple
    path2: tuple
    is_same: np.ndarray

    def __len__(self):
        return len(self.path1)

    @property
    def images(self):
        """The distinct images the pairs use, sorted."""
        return sorted(set(self.path1) | set(self.path2))


def lfw_pair_sample(pairs_path, n_same=100, n_different=100):
    """The first ``n_same`` same-person and the first ``n_different`` different-person pairs of
    an LFW ``pairs.txt``, in file order (with the defaults: 100 + 100 pairs from fold 1)."""
    pairs = fr_eval.read_lfw_pairs(pairs_path)
    same = np.flatnonzero(pairs.is_same)[:n_same]
    different = np.flatnonzero(~pairs.is_same)[:n_different]
    if len(same) < n_same or len(different) < n_different:
        raise ValueError(f"{pairs_path}: fewer than {n_same} same or {n_different} different pairs")
    chosen = np.concatenate([same, different])
    return PairSample(
        path1=tuple(pairs.path1[i] for i in chosen),
        path2=tuple(pairs.path2[i] for i in chosen),
        is_same=pairs.is_same[chosen].copy(),
    )


# LFW images are 250 x 250 with one face of about 100 px in the middle: detecting on half-size
# copies is about 3 times faster and moves the boxes by a few pixels (median 2.5 px on 32 images).
# (Raising MTCNN's min_face_size instead would skip the same pyramid levels, but mtcnn 1.0.0 then
# finds no face at all on these images.)
LFW_DETECTION_SCALE = 0.5


def load_pair_crops(sample, image_root, detection_scale=LFW_DETECTION_SCALE):
    """Crop every image of a :class:`PairSample` once.

    Returns ``(crops, index1, index2, kept)``: the crops of the distinct images, for each pair
    the row of its two images in ``crops``, and a bool mask of the pairs kept (both faces found).
    """
    root = Path(image_root)
    names = sample.images
    crops, kept_paths, _ = detect_and_crop([root / name for name in names], detection_scale)
    row = {str(path.relative_to(root)): i for i, path in enumerate(kept_paths)}
    kept = np.array([a in row and b in row for a, b in zip(sample.path1, sample.path2)], dtype=bool)
    index1 = np.array([row.get(a, -1) for a in sample.path1])
    index2 = np.array([row.get(b, -1) for b in sample.path2])
    return crops, index1[kept], index2[kept], kept


# ---------------------------------------------------------------------------------------------
# Before / after
# ---------------------------------------------------------------------------------------------
def mean_triplet_loss(labels, encodings, alpha=0.2):
    """Mean hinge over *all* valid triplets, and the fraction of them that are active.

    Unlike the training loss (averaged over active triplets only, so it can rise while triplets
    get solved), this is a fixed average over a fixed set of triplets: it can be compared
    between two models.
    """
    loss, fraction_active = fr_triplets.batch_all_triplet_loss(labels, encodings, alpha)
    # loss = sum / #active and fraction = #active / #valid, so their product is sum / #valid.
    return float(loss) * float(fraction_active), float(fraction_active)


def embedding_metrics(encodings, labels, threshold, alpha=0.2):
    """All-pairs verification numbers of a set of encodings at a given threshold.

    Returns a dict: ``auc``, ``accuracy``, ``tar``, ``far`` (at ``threshold``, accept iff
    distance < threshold), ``triplet_loss`` (see :func:`mean_triplet_loss`) and
    ``active_triplets`` (fraction of valid triplets with a positive loss).
    """
    names, label_index = _label_indices(labels)
    same, different = fr_eval.same_different_distances(encodings, label_index)
    counts = fr_eval.confusion_counts(same, different, threshold)
    loss, active = mean_triplet_loss(label_index, encodings, alpha)
    return dict(auc=fr_eval.roc_auc(same, different), accuracy=counts.accuracy, tar=counts.tar,
                far=counts.far, triplet_loss=loss, active_triplets=active)


def pair_metrics(encodings1, encodings2, is_same, threshold):
    """AUC and accuracy at ``threshold`` of verification pairs (row i of each side)."""
    distances = fr_eval.pair_distances(encodings1, encodings2)
    is_same = np.asarray(is_same, dtype=bool)
    same, different = distances[is_same], distances[~is_same]
    counts = fr_eval.confusion_counts(same, different, threshold)
    return dict(auc=fr_eval.roc_auc(same, different), accuracy=counts.accuracy, tar=counts.tar, far=counts.far)


def compare_heads(heads, train, val, pairs=None, alpha=0.2, pairs_name="LFW pairs"):
    """Evaluate several heads on the same cached trunk features.

    Parameters
    ----------
    heads : dict name -> keras.Model
        E.g. ``{"pretrained": split_facenet(model).head, "fine-tuned": result.head}``.
    train, val : (features, labels)
        Trunk features of the unchanged train / val crops and their identity names. The
        threshold of each head is the one with the best accuracy over all train pairs
        (``fr_eval.best_accuracy_threshold``); it is then applied, unchanged, to val and pairs.
    pairs : (features1, features2, is_same), optional
        Verification pairs of other people, e.g. from LFW.

    Returns
    -------
    pandas.DataFrame
        One column per head, one row per number.
    """
    import pandas as pd

    columns = {}
    for name, head in heads.items():
        train_encodings = embed_features(train[0], head)
        _, train_index = _label_indices(train[1])
        same, different = fr_eval.same_different_distances(train_encodings, train_index)
        threshold, train_counts = fr_eval.best_accuracy_threshold(same, different)
        train_loss, _ = mean_triplet_loss(train_index, train_encodings, alpha)
        val_numbers = embedding_metrics(embed_features(val[0], head), val[1], threshold, alpha)
        column = {
            "threshold (best on train)": threshold,
            "train accuracy": train_counts.accuracy,
            "train triplet loss": train_loss,
            "val AUC": val_numbers["auc"],
            "val accuracy": val_numbers["accuracy"],
            "val triplet loss": val_numbers["triplet_loss"],
            "val active triplets": val_numbers["active_triplets"],
        }
        if pairs is not None:
            pair_numbers = pair_metrics(embed_features(pairs[0], head), embed_features(pairs[1], head),
                                        pairs[2], threshold)
            column[f"{pairs_name} AUC"] = pair_numbers["auc"]
            column[f"{pairs_name} accuracy"] = pair_numbers["accuracy"]
        columns[name] = column
    return pd.DataFrame(columns)


# ---------------------------------------------------------------------------------------------
# Command line: the notebook's run, with every setting an option
# ---------------------------------------------------------------------------------------------
def main(argv=None):
    """Fine-tune on the train photos and print the before/after table (see ``--help``)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--alpha", type=float, default=1.0, help="triplet margin (default 1.0, as in the notebook)")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--mining", choices=sorted(MINING), default="semihard")
    parser.add_argument("--trainable-blocks", type=int, default=1)
    parser.add_argument("--random-crops", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lfw", type=Path, default=fr_utils.HERE.parent / "shared" / "lfw",
                        help="LFW folder with pairs.txt and images/ (skipped when absent)")
    parser.add_argument("--lfw-pairs", type=int, default=100,
                        help="first N same-person and first N different-person pairs of pairs.txt")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    model = fr_utils.load_facenet()
    train_crops, train_names = load_split_crops("train")
    val_crops, val_names = load_split_crops("val")
    tuned = fine_tune(model, train_crops, train_names, steps=args.steps, trainable_blocks=args.trainable_blocks,
                      random_crops=args.random_crops, mining=args.mining, alpha=args.alpha,
                      learning_rate=args.learning_rate, seed=args.seed)
    history = tuned.history
    print(f"{tuned.settings}\ntriplet loss, first 5 steps {history.loss[:5].mean():.3f}, last 5 "
          f"{history.loss[-5:].mean():.3f}; active triplets {history.fraction_active[:5].mean():.0%} -> "
          f"{history.fraction_active[-5:].mean():.0%}")
    data = tuned.training_set
    train = (data.original_features, np.array(data.names)[data.original_labels])
    val = (run_trunk(val_crops, tuned.trunk), val_names)
    pairs, pairs_name = None, f"LFW-{2 * args.lfw_pairs}"
    if (args.lfw / "pairs.txt").is_file():
        sample = lfw_pair_sample(args.lfw / "pairs.txt", args.lfw_pairs, args.lfw_pairs)
        crops, index1, index2, kept = load_pair_crops(sample, args.lfw / "images")
        features = run_trunk(crops, tuned.trunk)
        pairs = (features[index1], features[index2], sample.is_same[kept])
        print(f"LFW: {kept.sum()} of {len(sample)} pairs with both faces found")
    else:
        print(f"LFW not found in {args.lfw}")
    heads = {"pretrained": split_facenet(model, args.trainable_blocks).head, "fine-tuned": tuned.head}
    print(compare_heads(heads, train, val, pairs, args.alpha, pairs_name).round(4).to_string())
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
