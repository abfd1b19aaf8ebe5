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


def predict(model: Any, texts: list[str], batch_size: int = 2048) -> Any:
    """Class probabilities (n x 3, numpy) for raw texts."""
    import numpy as np

    if not texts:
        return np.zeros((0, 3), dtype=np.float32)
    array = np.array(texts, dtype=object).reshape(-1, 1)
    return model.predict(array, batch_size=batch_size, verbose=0)
