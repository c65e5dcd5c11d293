"""Inception-ResNet-v1, the FaceNet encoder, written for Keras 3.

The network maps a 160x160 RGB face crop to 128 numbers (Szegedy et al. 2016, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections"; Schroff et al. 2015, "FaceNet").
Every layer keeps the name it has in the pretrained file ``keras-facenet-h5/facenet_keras.h5``
(Hiroki Taniai's Keras conversion of David Sandberg's checkpoint 20170512-110547), so the weights
are loaded layer by layer by name with :func:`load_weights_from_h5`.

The original file cannot be opened by ``keras.models.load_model`` on Python 3.11: its residual
"scale-sum" layers are Lambda layers holding Python 3.6 bytecode. Here that operation is the small
serialisable layer :class:`ScaleSum`, so the architecture is plain code and nothing is unmarshalled.

Layout (input 160x160x3, channels last)::

    stem                      -> 17x17x256
    5 x Block35  (scale 0.17) -> 17x17x256
    Mixed_6a (reduction A)    ->  8x8x896
    10 x Block17 (scale 0.10) ->  8x8x896
    Mixed_7a (reduction B)    ->  3x3x1792
    5 x Block8   (scale 0.20) + Block8_6 (scale 1.0, no ReLU)
    global average pool, dropout, Dense 128 (no bias), BatchNorm (no scale)

The output is *not* L2-normalised inside the model; ``fr_utils`` does that.
"""

import h5py
import keras
import numpy as np
from keras import layers

__all__ = ["ScaleSum", "faceRecoModel", "load_weights_from_h5", "WeightsMismatchError"]

# Batch-norm settings of the checkpoint (TF-slim defaults used by FaceNet training).
BN_MOMENTUM = 0.995
BN_EPSILON = 0.001


@keras.saving.register_keras_serializable(package="facenet")
class ScaleSum(layers.Layer):
    """Residual connection of Inception-ResNet: ``inputs[0] + inputs[1] * scale``.

    Scaling the residual branch down (0.1-0.3) keeps very deep residual Inception networks stable
    in training (Szegedy et al. 2016, section 3.3).
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + residual * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def conv2d_bn(x, filters, kernel_size, strides=1, padding="same", activation="relu", name=None):
    """Convolution without bias, batch norm without scale, then an optional ReLU.

    Layers are named ``name``, ``name_BatchNorm`` and ``name_Activation`` as in the checkpoint.
    """
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(
        axis=3, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=False, name=f"{name}_BatchNorm"
    )(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_Activation")(x)
    return x


def _residual(x, branches, block_name, scale, activation):
    """Concatenate the branches, project back to x's depth with a 1x1 conv, add scaled, ReLU."""
    mixed = layers.Concatenate(axis=3, name=f"{block_name}_Concatenate")(branches)
    up = layers.Conv2D(x.shape[-1], 1, padding="same", use_bias=True, name=f"{block_name}_Conv2d_1x1")(mixed)
    x = ScaleSum(scale, name=f"{block_name}_ScaleSum")([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{block_name}_Activation")(x)
    return x


def block35(x, block_idx, scale=0.17, activation="relu"):
    """Inception-ResNet-A block on the 17x17 grid (three branches: 1x1, 3x3, double 3x3)."""
    name = f"Block35_{block_idx}"
    branch_0 = conv2d_bn(x, 32, 1, name=f"{name}_Branch_0_Conv2d_1x1")
    branch_1 = conv2d_bn(x, 32, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv2d_bn(branch_1, 32, 3, name=f"{name}_Branch_1_Conv2d_0b_3x3")
    branch_2 = conv2d_bn(x, 32, 1, name=f"{name}_Branch_2_Conv2d_0a_1x1")
    branch_2 = conv2d_bn(branch_2, 32, 3, name=f"{name}_Branch_2_Conv2d_0b_3x3")
    branch_2 = conv2d_bn(branch_2, 32, 3, name=f"{name}_Branch_2_Conv2d_0c_3x3")
    return _residual(x, [branch_0, branch_1, branch_2], name, scale, activation)


def block17(x, block_idx, scale=0.1, activation="relu"):
    """Inception-ResNet-B block on the 8x8 grid (1x1, and a factorised 1x7 -> 7x1)."""
    name = f"Block17_{block_idx}"
    branch_0 = conv2d_bn(x, 128, 1, name=f"{name}_Branch_0_Conv2d_1x1")
    branch_1 = conv2d_bn(x, 128, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv2d_bn(branch_1, 128, (1, 7), name=f"{name}_Branch_1_Conv2d_0b_1x7")
    branch_1 = conv2d_bn(branch_1, 128, (7, 1), name=f"{name}_Branch_1_Conv2d_0c_7x1")
    return _residual(x, [branch_0, branch_1], name, scale, activation)


def block8(x, block_idx, scale=0.2, activation="relu"):
    """Inception-ResNet-C block on the 3x3 grid (1x1, and a factorised 1x3 -> 3x1)."""
    name = f"Block8_{block_idx}"
    branch_0 = conv2d_bn(x, 192, 1, name=f"{name}_Branch_0_Conv2d_1x1")
    branch_1 = conv2d_bn(x, 192, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv2d_bn(branch_1, 192, (1, 3), name=f"{name}_Branch_1_Conv2d_0b_1x3")
    branch_1 = conv2d_bn(branch_1, 192, (3, 1), name=f"{name}_Branch_1_Conv2d_0c_3x1")
    return _residual(x, [branch_0, branch_1], name, scale, activation)


def reduction_a(x):
    """Mixed_6a: 17x17x256 -> 8x8x896 (strided 3x3, 1x1-3x3-strided 3x3, max pool)."""
    branch_0 = conv2d_bn(x, 384, 3, strides=2, padding="valid", name="Mixed_6a_Branch_0_Conv2d_1a_3x3")
    branch_1 = conv2d_bn(x, 192, 1, name="Mixed_6a_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv2d_bn(branch_1, 192, 3, name="Mixed_6a_Branch_1_Conv2d_0b_3x3")
    branch_1 = conv2d_bn(branch_1, 256, 3, strides=2, padding="valid", name="Mixed_6a_Branch_1_Conv2d_1a_3x3")
    branch_pool = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_6a_Branch_2_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=3, name="Mixed_6a")([branch_0, branch_1, branch_pool])


def reduction_b(x):
    """Mixed_7a: 8x8x896 -> 3x3x1792 (three conv branches and a max pool)."""
    branch_0 = conv2d_bn(x, 256, 1, name="Mixed_7a_Branch_0_Conv2d_0a_1x1")
    branch_0 = conv2d_bn(branch_0, 384, 3, strides=2, padding="valid", name="Mixed_7a_Branch_0_Conv2d_1a_3x3")
    branch_1 = conv2d_bn(x, 256, 1, name="Mixed_7a_Branch_1_Conv2d_0a_1x1")
    branch_1 = conv2d_bn(branch_1, 256, 3, strides=2, padding="valid", name="Mixed_7a_Branch_1_Conv2d_1a_3x3")
    branch_2 = conv2d_bn(x, 256, 1, name="Mixed_7a_Branch_2_Conv2d_0a_1x1")
    branch_2 = conv2d_bn(branch_2, 256, 3, name="Mixed_7a_Branch_2_Conv2d_0b_3x3")
    branch_2 = conv2d_bn(branch_2, 256, 3, strides=2, padding="valid", name="Mixed_7a_Branch_2_Conv2d_1a_3x3")
    branch_pool = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_7a_Branch_3_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=3, name="Mixed_7a")([branch_0, branch_1, branch_2, branch_pool])


def stem(x):
    """The plain convolutional stem: 160x160x3 -> 17x17x256."""
    x = conv2d_bn(x, 32, 3, strides=2, padding="valid", name="Conv2d_1a_3x3")
    x = conv2d_bn(x, 32, 3, padding="valid", name="Conv2d_2a_3x3")
    x = conv2d_bn(x, 64, 3, name="Conv2d_2b_3x3")
    x = layers.MaxPooling2D(3, strides=2, name="MaxPool_3a_3x3")(x)
    x = conv2d_bn(x, 80, 1, padding="valid", name="Conv2d_3b_1x1")
    x = conv2d_bn(x, 192, 3, padding="valid", name="Conv2d_4a_3x3")
    x = conv2d_bn(x, 256, 3, strides=2, padding="valid", name="Conv2d_4b_3x3")
    return x


def faceRecoModel(input_shape=(160, 160, 3), embedding_size=128, dropout_keep_prob=0.8):
    """Build the FaceNet Inception-ResNet-v1 encoder (architecture only, random weights).

    Arguments:
        input_shape: shape of one face crop, channels last. The pretrained weights expect
            (160, 160, 3) images standardised per image (see ``fr_utils.prewhiten``).
        embedding_size: length of the encoding (128 in the pretrained model).
        dropout_keep_prob: keep probability of the dropout before the bottleneck
            (only active in training).

    Returns:
        A ``keras.Model`` named "inception_resnet_v1" with 426 layers mapping a batch of faces
        (m, 160, 160, 3) to raw encodings (m, 128).
    """
    inputs = keras.Input(shape=input_shape, name="input_1")
    x = stem(inputs)
    for block_idx in range(1, 6):
        x = block35(x, block_idx, scale=0.17)
    x = reduction_a(x)
    for block_idx in range(1, 11):
        x = block17(x, block_idx, scale=0.1)
    x = reduction_b(x)
    for block_idx in range(1, 6):
        x = block8(x, block_idx, scale=0.2)
    # The last block adds its residual unscaled and has no ReLU, as in the checkpoint.
    x = block8(x, 6, scale=1.0, activation=None)
    x = layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = layers.Dropout(1.0 - dropout_keep_prob, name="Dropout")(x)
    x = layers.Dense(embedding_size, use_bias=False, name="Bottleneck")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=False, name="Bottleneck_BatchNorm")(x)
    return keras.Model(inputs, x, name="inception_resnet_v1")


class WeightsMismatchError(ValueError):
    """The weights file does not fit the architecture (missing, extra or mis-shaped arrays)."""


def _weight_suffix(name):
    """'Block35_1_Conv2d_1x1/kernel:0' -> 'kernel' (the variable's own name)."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def read_h5_weights(path):
    """Read every weight array of a Keras 2 ``.h5`` model file with h5py (no code is executed).

    Returns:
        dict layer name -> dict variable name ("kernel", "bias", "beta", ...) -> numpy array.
    """
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        weights = {}
        for layer_name in group.attrs.get("layer_names", list(group.keys())):
            layer_name = layer_name.decode() if isinstance(layer_name, bytes) else layer_name
            layer_group = group[layer_name]
            arrays = {}
            for weight_name in layer_group.attrs.get("weight_names", []):
                weight_name = weight_name.decode() if isinstance(weight_name, bytes) else weight_name
                arrays[_weight_suffix(weight_name)] = np.asarray(layer_group[weight_name])
            if arrays:
                weights[layer_name] = arrays
    return weights


def load_weights_from_h5(model, path):
    """Fill ``model`` with the weights stored in a Keras 2 ``.h5`` file, matching layers by name.

    Fails loudly (``WeightsMismatchError``) if any array in the file is left unused, any layer with
    weights is left unfilled, or any shape differs; a partial load would give plausible-looking
    but wrong encodings.

    Returns:
        The number of layers filled.
    """
    stored = read_h5_weights(path)
    layers_with_weights = {layer.name: layer for layer in model.layers if layer.weights}
    unfilled = sorted(set(layers_with_weights) - set(stored))
    unused = sorted(set(stored) - set(layers_with_weights))
    if unfilled or unused:
        raise WeightsMismatchError(
            f"{path}: the weights do not fit this architecture: {len(unfilled)} layer(s) of the model have "
            f"no weights in the file (e.g. {unfilled[:3]}), {len(unused)} layer(s) in the file are not in "
            f"the model (e.g. {unused[:3]}). Is this the FaceNet Inception-ResNet-v1 file facenet_keras.h5?"
        )
    for name, layer in layers_with_weights.items():
        arrays = stored[name]
        values = []
        for variable in layer.weights:
            key = _weight_suffix(variable.path)
            if key not in arrays:
                raise WeightsMismatchError(f"{path}: layer {name!r} has no array {key!r} (found {sorted(arrays)})")
            if tuple(arrays[key].shape) != tuple(variable.shape):
                raise WeightsMismatchError(
                    f"{path}: layer {name!r} array {key!r} has shape {arrays[key].shape}, "
                    f"the model expects {tuple(variable.shape)}"
                )
            values.append(arrays[key])
        if len(values) != len(arrays):
            extra = sorted(set(arrays) - {_weight_suffix(v.path) for v in layer.weights})
            raise WeightsMismatchError(f"{path}: layer {name!r} has unused arrays {extra}")
        layer.set_weights(values)
    return len(layers_with_weights)
