"""The progress bar: Keras' format, redraws only on a terminal."""

import io

from dendrite.utils.progbar import Progbar


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


def test_keras_averaging_stateful_and_add():
    """keras.utils.Progbar's rule: values of metrics not in stateful_metrics are averaged,
    each weighted by the steps since the last update; stateful ones show the last value;
    the final update shows what it is given."""
    import pytest

    import dendrite as tf

    stream = Terminal()
    bar = tf.keras.utils.Progbar(10, stateful_metrics=["acc"], stream=stream, interval=0.0)
    bar.update(1, [("loss", 4.0), ("acc", 0.1)])
    bar.add(3, [("loss", 2.0), ("acc", 0.5)])  # step 4: loss (4 * 1 + 2 * 3) / 4 = 2.5
    assert bar._seen_so_far == 4
    assert "loss: 2.5000" in stream.getvalue().split("\r")[-1]
    assert "acc: 0.5000" in stream.getvalue().split("\r")[-1]
    bar.update(10, [("loss", 7.0)])  # finalize: shown as given
    last = stream.getvalue().split("\r")[-1]
    assert "10/10" in last and "loss: 7.0000" in last and last.endswith("\n")
    with pytest.raises(ValueError, match="not both"):
        tf.keras.utils.Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])


def test_unit_name_silent_and_unknown_target():
    import dendrite as tf

    stream = io.StringIO()
    bar = tf.keras.utils.Progbar(2, unit_name="sample", stream=stream)
    bar.update(2)
    assert "/sample" in stream.getvalue()
    quiet = io.StringIO()
    silent = tf.keras.utils.Progbar(2, verbose=0, stream=quiet)
    silent.update(2, [("loss", 1.0)])
    assert quiet.getvalue() == ""
    open_ended = Terminal()
    unknown = tf.keras.utils.Progbar(None, stream=open_ended, interval=0.0)
    unknown.update(5, [("loss", 1.0)])
    unknown.update(7, [("loss", 3.0)], finalize=True)
    assert open_ended.getvalue().rstrip().split("\r")[-1].startswith("7 ")
    assert "loss: 3.0000" in open_ended.getvalue().split("\r")[-1]
