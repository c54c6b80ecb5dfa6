"""``RemoteMonitor``: POST each epoch's logs to a server, as JSON.

At every ``on_epoch_end`` the callback sends ``{"epoch": epoch, **logs}`` (NumPy scalars
and one-element arrays as plain numbers) to ``root + path`` with an HTTP POST through
``urllib``: as a JSON body (``Content-Type: application/json``) with
``send_as_json=True``, otherwise as a form whose field ``field`` holds the JSON text
(``application/x-www-form-urlencoded``), Keras' default. A server that cannot be reached
or answers with an error gives a warning, never a failed ``fit``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

import numpy as np

from dendrite.registry import register
from dendrite.training.callbacks.base import Callback


def _plain(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        return value.item() if value.size == 1 else value.tolist()
    return value


@register("callback")
class RemoteMonitor(Callback):
    """Stream epoch logs to a server (see the module docstring).

    Args:
        root: the server's root URL ("http://localhost:9000").
        path: the path under ``root`` ("/publish/epoch/end/").
        field: the form field holding the JSON text ("data"; unused with
            ``send_as_json``).
        headers: extra HTTP headers (a dict).
        send_as_json: send the logs as the JSON body instead of in a form (False).
        timeout: seconds to wait for the server (dendrite's addition; 10).
    """

    def __init__(
        self,
        root: str = "http://localhost:9000",
        path: str = "/publish/epoch/end/",
        field: str = "data",
        headers: dict | None = None,
        send_as_json: bool = False,
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.root = root
        self.path = path
        self.field = field
        self.headers = headers
        self.send_as_json = send_as_json
        self.timeout = timeout

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        send = {"epoch": epoch}
        send.update({key: _plain(value) for key, value in (logs or {}).items()})
        headers = dict(self.headers or {})
        if self.send_as_json:
            body = json.dumps(send).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode("ascii")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(
            self.root + self.path, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            warnings.warn(
                f"Could not reach RemoteMonitor root server at {self.root} ({error}).",
                stacklevel=2,
            )
