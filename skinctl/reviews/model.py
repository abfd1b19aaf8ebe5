"""The sentiment model: Keras TextVectorization (words and two-word phrases, TF-IDF weighted)
and one softmax layer over it. TensorFlow is imported only when a model is built or loaded."""

from __future__ import annotations

import re
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
        max_tokens=MAX_TOKENS,
        ngrams=2,
        output_mode="tf_idf",
        standardize=STANDARDIZE,
        name="vectorize",
    )
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    x = vectorize(inputs)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="sentiment")(x)
    model = keras.Model(inputs, outputs, name="review_sentiment")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def dataset(
    texts: list[str],
    labels: Any = None,
    weights: Any = None,
    *,
    batch_size: int,
    shuffle_seed: int | None = None,
) -> Any:
    """A tf.data pipeline of (text, label[, weight]) batches; texts as (batch, 1) strings."""
    import tensorflow as tf

    text_column = tf.constant(texts, dtype=tf.string)[:, None]
    parts: tuple[Any, ...] = (text_column,)
    if labels is not None:
        parts += (tf.constant(labels, dtype=tf.int32),)
    if weights is not None:
        parts += (tf.constant(weights, dtype=tf.float32),)
    data = tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else text_column)
    if shuffle_seed is not None:
        data = data.shuffle(len(texts), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(2)


def predict(model: Any, texts: list[str], batch_size: int = 2048) -> Any:
    """Class probabilities (n x 3, numpy) for raw texts."""
    import numpy as np

    if not texts:
        return np.zeros((0, 3), dtype=np.float32)
    return model.predict(dataset(texts, batch_size=batch_size), verbose=0)


# What TextVectorization's "lower_and_strip_punctuation" does: tf.strings.lower (ASCII letters
# only) and this regex's characters removed.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_STRIP = str.maketrans("", "", "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'")
_ASCII_SPACE = re.compile("[ \t\n\r\v\f]+")


class Scorer:
    """The trained model's arithmetic without TensorFlow's string ops, for scoring at scale:
    the same tokens (standardize, whitespace split, words and two-word phrases), the same
    TF-IDF weights (count x idf, unknown terms on index 0) and the same softmax layer, as a
    sparse matrix product. Tokenizing in TensorFlow ran ~2,500 reviews/s here; this several
    times that. `tests/reviews` checks both give the same probabilities."""

    def __init__(self, vocabulary: list[str], idf: Any, kernel: Any, bias: Any) -> None:
        import numpy as np

        self.index = {term: i for i, term in enumerate(vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float32)
        self.kernel = np.asarray(kernel, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)

    @classmethod
    def from_model(cls, model: Any) -> Scorer:
        vectorize = model.get_layer("vectorize")
        kernel, bias = model.get_layer("sentiment").get_weights()
        lookup = vectorize._lookup_layer
        return cls([str(t) for t in vectorize.get_vocabulary()], lookup.idf_weights, kernel, bias)

    def terms(self, text: str) -> list[str]:
        standardized = text.translate(_ASCII_LOWER).translate(_STRIP)
        # tf.strings.split splits on ASCII whitespace only (str.split also on U+2028 and others).
        words = (
            standardized.split()
            if standardized.isascii()
            else [w for w in _ASCII_SPACE.split(standardized) if w]
        )
        return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]

    def predict(self, texts: list[str]) -> Any:
        import numpy as np
        from scipy.sparse import csr_matrix

        index = self.index
        rows: list[int] = []
        columns: list[int] = []
        for row, text in enumerate(texts):
            for term in self.terms(text):
                rows.append(row)
                columns.append(index.get(term, 0))
        counts = csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)),
            shape=(len(texts), len(self.idf)),
        )  # duplicates add up: counts
        logits = counts.multiply(self.idf[None, :]).tocsr() @ self.kernel + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)
