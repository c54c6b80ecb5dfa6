"""Where dendrite finds things by name: custom objects registered by users
(``register_keras_serializable``, ``custom_object_scope``). Imports nothing from dendrite,
so every part of the package may use it."""
