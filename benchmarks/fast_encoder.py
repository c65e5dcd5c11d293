"""The FaceNet encoder compiled for inference: a graph function on fixed-size batches.

``fr_utils.encode_faces`` calls the Keras model eagerly (``model(batch)``), which dispatches the
426 layers one by one from Python: fine for a handful of faces, slow for many (see
``benchmarks/results.md``). :func:`compiled_encoder` traces the model once into a
``tf.function`` and always feeds it batches of the same size (the last one padded), so the graph
and oneDNN's kernels are built once and reused.

``dtype="bfloat16"`` runs the same weights with bfloat16 activations and matrix products (Keras'
``mixed_bfloat16`` policy), which CPUs with AMX or AVX512-BF16 execute natively; whether its
encodings are accurate enough is measured on LFW by ``bench_lfw.py --dtype bfloat16``.
"""

import numpy as np


def bfloat16_copy(model):
    """A copy of the FaceNet ``model`` whose layers compute in bfloat16 (variables stay float32)."""
    import keras

    import inception_blocks_v2

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        copy = inception_blocks_v2.faceRecoModel(tuple(model.input_shape[1:]))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def compiled_encoder(model, dtype="float32", batch_size=32, jit_compile=False):
    """A function: prewhitened faces (m, 160, 160, 3) float32 -> raw encodings (m, 128) float32.

    Arguments:
        model: the Keras FaceNet model (``fr_utils.load_facenet()``).
        dtype: "float32" or "bfloat16" (compute precision).
        batch_size: every call to the graph gets exactly this many faces; a shorter last batch is
            padded with zeros (its rows are dropped), so the graph is traced once.
        jit_compile: compile with XLA (measured slower on CPU; kept for the benchmark).
    """
    import tensorflow as tf

    if dtype == "bfloat16":
        model = bfloat16_copy(model)
    elif dtype != "float32":
        raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    shape = (batch_size,) + tuple(model.input_shape[1:])
    graph = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32),
                        input_signature=[tf.TensorSpec(shape, tf.float32)], jit_compile=jit_compile)

    def encode(faces):
        faces = np.asarray(faces, np.float32)
        outputs = []
        for start in range(0, len(faces), batch_size):
            batch = faces[start:start + batch_size]
            real = len(batch)
            if real < batch_size:
                batch = np.concatenate([batch, np.zeros((batch_size - real,) + shape[1:], np.float32)])
            outputs.append(graph(batch).numpy()[:real])
        return np.concatenate(outputs) if outputs else np.zeros((0, model.output_shape[-1]), np.float32)

    encode.graph = graph
    encode.batch_size = batch_size
    return encode
