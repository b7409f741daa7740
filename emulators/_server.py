"""What every emulator shares: a ThreadingHTTPServer on its own daemon thread (`url`, `start`, `stop`, and use as
a context manager), the command line's serve-until-SIGINT/SIGTERM loop, and fault injection (`FaultPlan`, applied
by `EmulatorHandler`). An emulator sets `request_handler` (its handler, whose server.emulator is the emulator),
`host` and `port`, and may check what it needs in `_before_start`.

Fault injection (emulator choice throughout: the vendors publish what their answers look like, not how often
they fail). Each API request draws at most one request-level fault, with the probabilities given per kind:
- rate_limit: the vendor's rate-limit answer, before anything is done;
- server_error: a 5xx; variant "before" (nothing done) or "after" (the write is carried out, then a gateway's 5xx
  replaces the answer);
- timeout: the answer is held `hold_s` seconds, longer than a client's timeout; variant "applied" (carried out,
  then held) or "not_applied" (held, then the connection is closed without doing anything);
- dropped: the connection is closed without an answer; variant "before" (nothing done), "after" (carried out,
  answer lost) or "truncated" (carried out, the connection closed halfway through the answer's body).
A fifth kind, reject, draws once per record of a write: the record is answered as a transient per-record failure
inside a 200/207 (the emulator says how) and not written; the next attempt may succeed. The draws come from one
seeded random generator, so a sequential client sees the same faults every run. A request faulted before it is
carried out never reaches the emulator, nor its request counters (FaultPlan.requests counts every API request).
"""
from __future__ import annotations

import random
import signal
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

REQUEST_FAULTS = ("rate_limit", "server_error", "timeout", "dropped")
FAULT_KINDS = (*REQUEST_FAULTS, "reject")
VARIANTS = {"rate_limit": ("",), "server_error": ("before", "after"), "timeout": ("applied", "not_applied"),
            "dropped": ("before", "after", "truncated")}
DEFAULT_HOLD_S = 35.0  # longer than erp2crm's HttpClient timeout (30 s)


class FaultPlan:
    """Which API requests fail, and how: `rates` maps a kind of FAULT_KINDS to a probability (0-1), or
    "kind:variant" (say "dropped:after") to fault with that variant only. The request-level probabilities add up to
    at most 1; reject is drawn per record. `injected` counts what was injected, by kind, by "kind:variant" and by
    "kind:status"; `requests` counts the API requests seen."""

    def __init__(self, rates: dict[str, float] | None = None, seed: int = 0, hold_s: float = DEFAULT_HOLD_S):
        rates = {k: float(v) for k, v in (rates or {}).items() if v}
        for key in rates:
            check_fault_key(key)
        if any(not 0 <= p <= 1 for p in rates.values()):
            raise ValueError("fault probabilities must be between 0 and 1")
        self._request_rates = [(*(k.split(":") + [""])[:2], p) for k, p in rates.items() if k != "reject"]
        if sum(p for _, _, p in self._request_rates) > 1:
            raise ValueError(f"the probabilities of {', '.join(REQUEST_FAULTS)} add up to more than 1")
        self.rates, self.hold_s = rates, hold_s
        self._random, self._lock = random.Random(seed), threading.Lock()
        self.injected: Counter[str] = Counter()
        self.requests = 0

    def __bool__(self) -> bool:
        return bool(self.rates)

    def draw(self) -> tuple[str, str] | None:
        """The fault of one API request, (kind, variant), or None; counts the request."""
        with self._lock:
            self.requests += 1
            if not self._request_rates:
                return None
            x = self._random.random()
            for kind, variant, p in self._request_rates:
                if x < p:
                    variant = variant or self._random.choice(VARIANTS[kind])
                    self.injected[kind] += 1
                    if variant:
                        self.injected[f"{kind}:{variant}"] += 1
                    return kind, variant
                x -= p
            return None

    def reject(self) -> bool:
        """Whether one record of a write is rejected (transiently)."""
        p = self.rates.get("reject", 0.0)
        if not p:
            return False
        with self._lock:
            hit = self._random.random() < p
            self.injected["reject"] += hit
            return hit

    def note(self, key: str) -> None:
        with self._lock:
            self.injected[key] += 1

    def choice(self, options):
        with self._lock:
            return self._random.choice(options)


def check_fault_key(key: str) -> str:
    kind, _, variant = key.partition(":")
    if kind not in FAULT_KINDS or (variant and variant not in VARIANTS.get(kind, ())):
        known = [*FAULT_KINDS, *(f"{k}:{v}" for k, vs in VARIANTS.items() for v in vs if v)]
        raise ValueError(f"unknown fault {key!r}; known: {', '.join(known)}")
    return key


def parse_fault(text: str) -> tuple[str, float]:
    """A --fault value, KIND=P or KIND:VARIANT=P: (key, probability)."""
    import argparse

    key, sep, p = text.partition("=")
    try:
        value = float(p)
        check_fault_key(key)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
    if not sep or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected KIND=P with P between 0 and 1, got {text!r}")
    return key, value


def add_fault_arguments(parser) -> None:
    """The command line's fault options, shared by the emulators."""
    parser.add_argument("--fault", type=parse_fault, action="append", default=[], metavar="KIND=P",
                        help=f"inject faults of KIND ({', '.join(FAULT_KINDS)}; or KIND:VARIANT, say dropped:after) "
                             f"with probability P (per request; reject: per record); repeatable")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draws (default 0)")
    parser.add_argument("--fault-hold", type=float, default=DEFAULT_HOLD_S,
                        help=f"seconds a timeout fault holds the answer (default {DEFAULT_HOLD_S:g}: more than a "
                             f"client's 30 s)")


class EmulatorHandler(BaseHTTPRequestHandler):
    """Reads the request, lets the emulator's fault plan act on API requests (paths under the emulator's
    `api_prefix`), and writes the answer. A subclass implements `answer(body)` → (status, bytes, headers with
    Content-Type); the emulator implements `fault_answer(kind, variant)` for rate_limit and server_error, and may
    set `on_request(n, method, path)`, called before the n-th API request is carried out (a test's hook: return
    False to close the connection without carrying it out)."""

    def log_message(self, format, *args) -> None:  # quiet: no per-request lines on stderr
        pass

    def answer(self, body: bytes) -> tuple[int, bytes, dict]:
        raise NotImplementedError

    def _send(self, status: int, data: bytes, headers: dict, body_bytes: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data if body_bytes is None else data[:body_bytes])

    def _send_fault(self, plan: FaultPlan, kind: str, variant: str) -> None:
        status, data, headers = self.server.emulator.fault_answer(kind, variant)
        plan.note(f"{kind}:{status}")
        self._send(status, data, headers)

    def _drop(self) -> None:
        self.close_connection = True  # the server closes the socket: the client reads no answer

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = self.rfile.read(length) if length > 0 else b""  # always read it, whatever the answer
        emulator = self.server.emulator
        plan: FaultPlan | None = getattr(emulator, "faults", None)
        api = self.path.startswith(emulator.api_prefix)
        fault = plan.draw() if api and plan is not None else None
        hook = getattr(emulator, "on_request", None)
        seen = plan.requests if plan is not None else 0
        if api and hook is not None and hook(seen, self.command, self.path) is False:
            return self._drop()
        kind, variant = fault or (None, None)
        try:
            if kind == "rate_limit" or (kind == "server_error" and variant == "before"):
                return self._send_fault(plan, kind, variant)
            if (kind, variant) in (("dropped", "before"), ("timeout", "not_applied")):
                if kind == "timeout":
                    time.sleep(plan.hold_s)
                return self._drop()
            status, data, headers = self.answer(body)
            if kind == "server_error":  # carried out; a gateway's 5xx replaces the answer
                return self._send_fault(plan, kind, variant)
            if kind == "dropped":
                if variant == "truncated" and len(data) > 1:
                    self._send(status, data, headers, body_bytes=len(data) // 2)
                return self._drop()
            if kind == "timeout":
                time.sleep(plan.hold_s)  # the client has given up by now; the answer goes nowhere
            self._send(status, data, headers)
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            self.close_connection = True

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _dispatch


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
