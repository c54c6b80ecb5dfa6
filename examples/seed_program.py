"""The design document's program (section 5.1), verbatim but for the import line and the
data loading: Dense 128 relu on 784 inputs, Dense 10 softmax, Adam, sparse categorical
cross-entropy, 5 epochs, then evaluate on the test set.

Run: python examples/seed_program.py   (Fashion-MNIST; needs `apt-get install
dataset-fashion-mnist` or network access to the official mirrors)
"""

import dendrite as tf

# Data loading (the document leaves it out): Fashion-MNIST, flattened to 784 values in [0, 1].
tf.keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.fashion_mnist.load_data()
x_train = x_train.reshape(-1, 784).astype("float32") / 255.0
x_test = x_test.reshape(-1, 784).astype("float32") / 255.0

# 定义模型
model = tf.keras.Sequential(
    [
        tf.keras.layers.Dense(128, activation="relu", input_shape=(784,)),
        tf.keras.layers.Dense(10, activation="softmax"),
    ]
)

# 编译模型
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

# 训练模型
model.fit(x_train, y_train, epochs=5)

# 评估模型
model.evaluate(x_test, y_test, verbose=2)
