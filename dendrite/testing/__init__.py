"""Testing tools: gradient checks against finite differences."""

from dendrite.testing.gradcheck import gradcheck

__all__ = ["gradcheck"]
