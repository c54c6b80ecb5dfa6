"""Gradient descent as the design document writes it (4.3): w <- w - alpha * dL/dw, with
dL/dw computed on the whole training set at every step.

In Keras terms that is plain SGD (no momentum) with ``batch_size=len(x)``: one batch per
epoch, so each epoch is exactly one full-batch gradient step.
"""

import numpy as np

import dendrite as tf

tf.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(512, 3)).astype("float32")
true_w = np.array([[2.0], [-1.0], [0.5]], dtype="float32")
y = x @ true_w + 0.3

model = tf.Sequential([tf.layers.Dense(1, input_shape=(3,))])
model.compile(optimizer=tf.optimizers.SGD(learning_rate=0.1), loss="mse")
history = model.fit(x, y, batch_size=len(x), epochs=100, verbose=0)

kernel, bias = model.get_weights()
print(f"loss: {history.history['loss'][0]:.4f} -> {history.history['loss'][-1]:.6f}")
print("learned w:", kernel.ravel().round(3), "b:", bias.round(3))
