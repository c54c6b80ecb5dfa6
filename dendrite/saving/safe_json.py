"""JSON from files we did not write: size, nesting and duplicate keys checked first.

``json.loads`` alone would accept a 2 GB document, recurse until Python's stack gives out
on ``[[[[...]]]]``, and silently keep the last of two equal keys. ``loads_checked`` refuses
all three with a ``ModelLoadError`` that names the file part.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from dendrite.saving.errors import ModelLoadError

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64

# A JSON string, or an unterminated one running to the end of the text. Every match
# attempt that starts at a quote succeeds, and the possessive quantifiers never give back
# what they took, so one pass over the text is linear in its length: a pattern that can
# fail after scanning (an unterminated ``"\"\"\...``) would rescan from every quote and
# take time quadratic in the size of a hostile file.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)


def nesting_depth(text: bytes) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text (strings ignored), in array code;
    linear in the length of ``text`` whatever it holds."""
    stripped = _STRING.sub(b'""', text)
    codes = np.frombuffer(stripped, dtype=np.uint8)
    steps = (
        (codes == ord("[")).astype(np.int32)
        + (codes == ord("{"))
        - (codes == ord("]"))
        - (codes == ord("}"))
    )
    return int(np.cumsum(steps).max(initial=0))


def _no_duplicates(what: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ModelLoadError(f"{what}: the key {key!r} appears twice in one object.")
            result[key] = value
        return result

    return hook


def loads_checked(
    payload: bytes | str,
    what: str,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse ``payload`` as UTF-8 JSON, or raise ``ModelLoadError`` naming ``what``."""
    data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    if len(data) > max_bytes:
        raise ModelLoadError(
            f"{what} is {len(data)} bytes of JSON; the limit is {max_bytes} bytes."
        )
    depth = nesting_depth(data)
    if depth > max_depth:
        raise ModelLoadError(f"{what} nests {depth} levels deep; the limit is {max_depth}.")
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates(what))
    except ModelLoadError:
        raise
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise ModelLoadError(f"{what} is not valid JSON: {error}") from None
