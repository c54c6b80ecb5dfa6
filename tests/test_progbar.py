"""The progress bar: Keras' format, redraws only on a terminal."""

import io

from dendrite.training.progbar import Progbar


class Terminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self):
        return True


def test_not_a_terminal_prints_only_the_final_line():
    stream = io.StringIO()
    bar = Progbar(10, stream=stream)
    for step in range(1, 11):
        bar.update(step, {"loss": 0.5, "accuracy": 0.25})
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\r" not in text
    assert text.startswith("10/10 ") and "loss: 0.5000" in text and "accuracy: 0.2500" in text
    assert "/step" in text


def test_terminal_redraws_in_place():
    stream = Terminal()
    bar = Progbar(3, stream=stream, interval=0.0)
    for step in range(1, 4):
        bar.update(step, {"loss": 1.0})
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "1/3" in text and "3/3" in text


def test_verbose_two_is_one_summary_line():
    stream = Terminal()
    bar = Progbar(4, verbose=2, stream=stream)
    for step in range(1, 5):
        bar.update(step, {"loss": 2.0})
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\r" not in text and text.startswith("4/4 - ")
