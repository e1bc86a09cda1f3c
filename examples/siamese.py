"""Build and save the bundled example: a small siamese network.

One ``tower`` model (Conv2D → pooling → Dense) is called on two images, and the
two embeddings meet in a Dense head. The tower's weights are shared by both
branches; ``weighttie report`` shows that as one shared-model group.

Usage: python examples/siamese.py OUT.keras
"""

from __future__ import annotations

import os
import sys
from typing import Any

import weighttie

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_siamese() -> Any:
    import keras
    from keras import layers

    image = keras.Input((28, 28, 1), name="image")
    x = layers.Conv2D(16, 3, activation="relu", name="conv")(image)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    embedding = layers.Dense(32, activation="relu", name="embed")(x)
    tower = keras.Model(image, embedding, name="tower")

    left = keras.Input((28, 28, 1), name="left")
    right = keras.Input((28, 28, 1), name="right")
    merged = layers.Concatenate(name="merge")([tower(left), tower(right)])
    score = layers.Dense(1, activation="sigmoid", name="score")(merged)
    return keras.Model([left, right], score, name="siamese")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].endswith(".keras"):
        print("usage: python examples/siamese.py OUT.keras", file=sys.stderr)
        return 2
    # Keras (and TensorFlow) start inside this block: on some CPUs TensorFlow prints
    # start-up lines on stderr; they stay off the terminal, anything else comes through.
    with weighttie.quiet_backend_logs():
        import keras

        keras.utils.set_random_seed(0)
        model = build_siamese()
        model.save(argv[0])
    print(f"wrote {argv[0]} ({model.count_params():,} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
