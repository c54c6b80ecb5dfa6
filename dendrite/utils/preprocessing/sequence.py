"""``keras.preprocessing.sequence``: ``pad_sequences`` (as ``keras.utils.pad_sequences``)."""

from dendrite.utils import pad_sequences

__all__ = ["pad_sequences"]
