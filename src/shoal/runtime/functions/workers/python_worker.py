"""The Python action worker: OpenWhisk's action-proxy protocol (``POST /init``, then ``POST /run``) on loopback.

Runs with the plain interpreter in isolated mode (``python -I -S``), so only the standard library,
the action's own directory and its ``virtualenv`` (made by the build from ``requirements.txt`` or by
its ``build.sh``) are importable — as in DigitalOcean's Python runtime image, not shoal's packages.
Standard library only, one activation at a time (OpenWhisk's concurrency of one per container).

* Start: binds 127.0.0.1 on a free port and writes the port number to the file descriptor named
  by ``SHOAL_CONTROL_FD`` (3 by default), then closes it: the gateway never races anyone for a port.
* ``/init`` ``{"value": {"name", "main", "path", "env"}}`` (``code`` instead of ``path`` carries the
  source inline, as OpenWhisk sends it): imports the single file, or a directory's ``__main__.py``,
  and finds ``main``; ``env`` becomes process environment. Init happens once per worker.
* ``/run`` ``{"value": {...}, "activation_id", "deadline", ...}``: every member but ``value``
  becomes ``__OW_<NAME>``; ``main`` is called with 0, 1 (``args``) or 2 (``args, context``)
  parameters; the result must be a dictionary (``None`` counts as ``{}``). Errors answer 502 with
  ``{"error": ...}`` and a traceback goes to stderr.

What the handler prints goes to the worker's stdout/stderr, which the gateway shares: the
component's RUN logs.
"""

from __future__ import annotations

import glob
import importlib.util
import inspect
import json
import os
import site
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType
from typing import Any


_main: Callable[..., Any] | None = None
_arity = 1


class Context:
    """The second parameter of ``main(args, context)`` (reference §3.3)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.function_name = str(meta.get("action_name", ""))
        self.function_version = str(meta.get("action_version", ""))
        self.activation_id = str(meta.get("activation_id", ""))
        self.request_id = str(meta.get("transaction_id", ""))
        self.deadline = int(meta.get("deadline") or 0)
        self.api_host = str(meta.get("api_host", ""))
        self.api_key = str(meta.get("api_key", ""))
        self.namespace = str(meta.get("namespace", ""))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline - int(time.time() * 1000))


def _load(value: dict[str, Any]) -> ModuleType:
    path = value.get("path")
    if not path:
        handle, path = tempfile.mkstemp(suffix=".py", prefix="action-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(str(value.get("code") or ""))
    path = str(path)
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    for packages in sorted(glob.glob(os.path.join(directory, "virtualenv", "lib", "python*", "site-packages"))):
        site.addsitedir(packages)
    sys.path.insert(0, directory)
    source = os.path.join(path, "__main__.py") if os.path.isdir(path) else path
    spec = importlib.util.spec_from_file_location("__action__", source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__action__"] = module
    spec.loader.exec_module(module)
    return module


def init(message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    global _main, _arity
    if _main is not None:
        return 403, {"error": "Cannot initialize the action more than once."}
    value = message.get("value") or {}
    for key, item in (value.get("env") or {}).items():
        os.environ[str(key)] = str(item)
    name = str(value.get("main") or "main")
    try:
        module = _load(value)
    except Exception as exc:  # noqa: BLE001 - any import failure is the action's, reported to its caller
        traceback.print_exc()
        return 502, {"error": f"Initialization has failed due to: {exc!r}"}
    found = getattr(module, name, None)
    if not callable(found):
        return 502, {"error": f"Initialization has failed: the action has no function named {name!r}."}
    try:
        count = len(inspect.signature(found).parameters)
    except (TypeError, ValueError):
        count = 1
    _main, _arity = found, min(count, 2)
    return 200, {"ok": True}


def run(message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if _main is None:
        return 403, {"error": "The action was not initialized."}
    args = message.get("value") or {}
    meta = {k: v for k, v in message.items() if k != "value"}
    for key, item in meta.items():
        os.environ["__OW_" + key.upper()] = str(item)
    try:
        result = _main(*((args, Context(meta))[:_arity]))
    except Exception as exc:  # noqa: BLE001 - the action's own failure
        traceback.print_exc()
        return 502, {"error": f"An error has occurred (see logs for details): {exc}"}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    if result is None:
        result = {}
    if not isinstance(result, dict):
        return 502, {"error": "The action did not return a dictionary."}
    return 200, result


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without this, Nagle and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers.get("content-length") or 0)
        try:
            message = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            status, answer = 400, {"error": "The request body is not JSON."}
        else:
            handler = {"/init": init, "/run": run}.get(self.path)
            status, answer = handler(message) if handler else (404, {"error": "not found"})
        try:
            data = json.dumps(answer).encode()
        except (TypeError, ValueError):
            status, data = 502, json.dumps({"error": "The action did not return a JSON-serializable "
                                                     "dictionary."}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
        return  # the gateway reports activations; request lines would only be noise in the RUN logs


def serve() -> None:
    server = HTTPServer(("127.0.0.1", 0), Handler)
    control = int(os.environ.pop("SHOAL_CONTROL_FD", "3"))
    os.write(control, f"{server.server_address[1]}\n".encode())
    os.close(control)
    server.serve_forever()


if __name__ == "__main__":
    serve()
