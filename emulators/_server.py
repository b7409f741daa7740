"""What every emulator shares: a ThreadingHTTPServer on its own daemon thread (`url`, `start`, `stop`, and use as
a context manager), and the command line's serve-until-SIGINT/SIGTERM loop. An emulator sets `request_handler`
(its BaseHTTPRequestHandler, whose server.emulator is the emulator), `host` and `port`, and may check what it
needs in `_before_start`."""
from __future__ import annotations

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class LocalServer:
    request_handler: type[BaseHTTPRequestHandler]
    thread_name = "emulator"
    host: str
    port: int
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{'127.0.0.1' if self.host in ('', '0.0.0.0') else self.host}:{self.port}"

    def _before_start(self) -> None:
        """What must hold before serving (a database file, say): raise to refuse to start."""

    def start(self):
        if self._server is None:
            self._before_start()
            self._server = ThreadingHTTPServer((self.host, self.port), self.request_handler)
            self._server.daemon_threads = True
            self._server.emulator = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_until_signalled(make: Callable[[], LocalServer], name: str, errors: tuple[type[Exception], ...],
                          detail: str = "") -> int:
    """The command line's loop: start the emulator `make()` builds, say where it listens, serve until SIGINT or
    SIGTERM, stop. Exit status 1, with the reason, when it cannot start (one of `errors`)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        emulator = make().start()
    except errors as e:
        print(f"{name} emulator: cannot start: {e}", file=sys.stderr)
        return 1
    print(f"{name} emulator listening on {emulator.url}{detail}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0
