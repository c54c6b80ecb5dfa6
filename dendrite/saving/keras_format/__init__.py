"""Keras 3's own files, both ways: ``.keras`` zips (``config.json``, ``metadata.json``,
``model.weights.h5``) and ``.weights.h5`` in Keras' variable layout.

- ``layout.py``: the zip and the HDF5 store, read with the same care as dendrite's own
  files (regular files, bounded sizes, no HDF5 feature that reads another file, shapes and
  dtypes checked from the metadata before any data) and written atomically;
- ``config_in.py`` / ``config_out.py``: Keras' config spellings to dendrite's and back;
- ``weight_map.py``: where each dendrite weight lives in Keras' layout
  (``layers/<class>/vars/<i>``, recurrent cells, wrappers, attention projections,
  Normalization's ``count``);
- ``optimizer_map.py``: the optimizer's variables in Keras' order;
- ``model_io.py``: ``load_keras_model`` / ``save_keras_model`` and the weights-only pair.

dendrite's own ``.dendrite`` and ``.weights.safetensors`` stay the documented default.
"""
