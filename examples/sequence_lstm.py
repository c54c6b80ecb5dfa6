"""An LSTM reads Fashion-MNIST images row by row: 28 time steps of 28 pixels each.

The design document's image and sequence applications (section 6) in one program: the
recurrent layer sees an image as a sequence, LSTM(128) summarises it in its last hidden
state, and Dense(10, softmax) classifies the garment. Adam, sparse categorical
cross-entropy, 3 epochs: about 87% test accuracy.

Run: python examples/sequence_lstm.py [--epochs 3] [--train-samples 60000]
(Fashion-MNIST: `apt-get install dataset-fashion-mnist` or network access.)
"""

import argparse
import time

import dendrite as tf

try:
    LSTM = tf.keras.layers.LSTM
except AttributeError:  # before the package facade exports the recurrent layers
    from dendrite.layers.recurrent import LSTM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--train-samples", type=int, default=60000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tf.keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.fashion_mnist.load_data()
    # Each image is a sequence: (samples, 28 steps, 28 features), pixels scaled to [0, 1].
    x_train = x_train[: args.train_samples].astype("float32") / 255.0
    y_train = y_train[: args.train_samples]
    x_test = x_test.astype("float32") / 255.0

    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(28, 28)),
            LSTM(args.units),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"training time: {seconds:.1f} s ({seconds / args.epochs:.1f} s/epoch)")
    print(f"test loss: {loss:.4f}")
    print(f"test accuracy: {accuracy:.4f}")


if __name__ == "__main__":
    main()
