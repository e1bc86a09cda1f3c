"""Two Conv2D layers, "same" and "valid" padding, sharing one kernel: save, load, resume.

Usage: python examples/tied_convs.py OUT.keras

Trains one epoch, saves with plain ``model.save``, loads with
``weighttie.load_model`` (the tie and Adam's state come back), trains one more
epoch, and prints the report of the file.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

import weighttie

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build() -> Any:
    import keras
    from keras import layers

    same = layers.Conv2D(8, 3, padding="same", name="same")
    valid = layers.Conv2D(8, 3, padding="valid", activation="relu", name="valid")
    weighttie.tie_weights(same, valid)  # before building: binds when both are built
    image = keras.Input((16, 16, 3), name="image")
    a = layers.GlobalAveragePooling2D(name="pool_same")(same(image))
    b = layers.GlobalAveragePooling2D(name="pool_valid")(valid(image))
    score = layers.Dense(1, name="score")(layers.Concatenate(name="merge")([a, b]))
    model = keras.Model(image, score, name="tied_convs")
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].endswith(".keras"):
        print("usage: python examples/tied_convs.py OUT.keras", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16, 16, 3)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")

    # The backend starts and first runs inside this block: TensorFlow's start-up
    # lines (printed on some CPUs) stay off the terminal, anything else comes through.
    with weighttie.quiet_backend_logs():
        import keras

        keras.utils.set_random_seed(0)
        model = build()
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        model.save(argv[0])

        loaded = weighttie.load_model(argv[0])
        assert loaded.get_layer("valid").kernel is loaded.get_layer("same").kernel
        loaded.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    print(f"reloaded {argv[0]}: still tied, optimizer state restored, trained one more epoch\n")
    print(weighttie.render(weighttie.read_report(argv[0])), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
