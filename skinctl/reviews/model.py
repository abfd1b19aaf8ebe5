"""The sentiment model: Keras TextVectorization (words and two-word phrases, TF-IDF weighted)
and one softmax layer over it. TensorFlow is imported only when a model is built or loaded."""

from __future__ import annotations

from typing import Any

ARCHITECTURE = "tfidf-bigram-linear"
MAX_TOKENS = 40_000
STANDARDIZE = "lower_and_strip_punctuation"


def keras_module() -> Any:
    from skinctl.train.pipeline import tensorflow

    tensorflow()
    import keras

    return keras


def build(texts: list[str], classes: int, *, learning_rate: float, dropout: float = 0.3) -> Any:
    """A TF-IDF bigram vectorizer fitted (`adapt`) on the training texts, then dropout and a
    softmax layer. Takes raw strings: the saved model scores text as it is stored."""
    keras = keras_module()
    import tensorflow as tf

    vectorize = keras.layers.TextVectorization(
        max_tokens=MAX_TOKENS, ngrams=2, output_mode="tf_idf", standardize=STANDARDIZE,
        name="vectorize",
    )
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    x = vectorize(inputs)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="sentiment")(x)
    model = keras.Model(inputs, outputs, name="review_sentiment")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def dataset(texts: list[str], labels: Any = None, weights: Any = None, *, batch_size: int,
            shuffle_seed: int | None = None) -> Any:
    """A tf.data pipeline of (text, label[, weight]) batches; texts as (batch, 1) strings."""
    import tensorflow as tf

    parts: tuple[Any, ...] = (tf.constant(texts, dtype=tf.string)[:, None],)
    if labels is not None:
        parts += (tf.constant(labels, dtype=tf.int32),)
    if weights is not None:
        parts += (tf.constant(weights, dtype=tf.float32),)
    data = tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else parts[0])
    if shuffle_seed is not None:
        data = data.shuffle(len(texts), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(2)


def predict(model: Any, texts: list[str], batch_size: int = 2048) -> Any:
    """Class probabilities (n x 3, numpy) for raw texts."""
    import numpy as np

    if not texts:
        return np.zeros((0, 3), dtype=np.float32)
    return model.predict(dataset(texts, batch_size=batch_size), verbose=0)
