"""A small HTTP/1.1 load generator: processes of keep-alive connections sending pre-built requests.

Closed loop (rate None): every connection sends its next request as soon as the last one is answered, which
measures the most a server answers. Open loop (a rate): requests are due at fixed intervals and each one's
latency counts from when it was due, so a server that falls behind shows it in the tail (no coordinated
omission). Only responses with a Content-Length are understood, which is what gunicorn sends for these apps.
"""

from __future__ import annotations

import multiprocessing
import selectors
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadResult:
    """What a load run saw: answers, seconds, latencies (s) of a sample of them, and answers by status."""

    answered: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """Build one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    def __init__(self, port: int, selector: selectors.BaseSelector):
        self.port, self.selector = port, selector
        self.last = b""
        self.started = 0.0
        self._open()

    def _open(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.selector.register(self.sock, selectors.EVENT_READ, self)
        self.buffer = b""

    def reopen(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        self.selector.unregister(self.sock)
        self.sock.close()

    def send(self, request: bytes, due: float) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(request)
        self.sock.setblocking(False)
        self.last, self.started = request, due

    def answer(self) -> tuple[int, bool] | None:
        """Return (status, server closes) of a whole response in the buffer (dropped from it), else None."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end].decode("latin-1")
        length, closes = 0, False
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                closes = value.strip().lower() == "close"
        if len(self.buffer) < end + 4 + length:
            return None
        self.buffer = self.buffer[end + 4 + length:]
        return int(head.split(" ", 2)[1]), closes


def _run(port: int, requests: list[bytes], connections: int, seconds: float, rate: float | None,
         count: int | None, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One process's share of the load; puts its LoadResult on the queue."""
    result = LoadResult()
    selector = selectors.DefaultSelector()
    pool = [_Connection(port, selector) for _ in range(connections)]
    idle = deque(pool)  # first in, first out: every connection stays in use, none idles into the keep-alive limit
    waiting: deque[float] = deque()  # open loop: due times of requests no connection was free for
    interval = 1 / rate if rate else 0.0
    sent = 0
    start = time.perf_counter()
    next_due = start
    deadline = start + seconds
    sample_every = 1

    def send(conn: _Connection, due: float) -> None:
        nonlocal sent
        conn.send(requests[sent % len(requests)], due)
        sent += 1

    while True:
        now = time.perf_counter()
        done_sending = now >= deadline or (count is not None and sent >= count)
        if not done_sending:
            if rate:
                while next_due <= now:
                    waiting.append(next_due)
                    next_due += interval
                while waiting and idle:
                    send(idle.popleft(), waiting.popleft())
            else:
                while idle and (count is None or sent < count):
                    send(idle.popleft(), time.perf_counter())
        if done_sending and len(idle) == len(pool):
            break
        timeout = max(0.0, min(next_due - now, 0.05)) if rate and not done_sending else 0.05
        for key, _ in selector.select(timeout):
            conn = key.data
            try:
                chunk = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:  # the server closed an idle keep-alive connection: send the request again
                conn.reopen()
                conn.send(conn.last, conn.started)
                continue
            conn.buffer += chunk
            answered = conn.answer()
            if answered is None:
                continue
            status, closes = answered
            result.answered += 1
            result.statuses[status] += 1
            if result.answered % sample_every == 0:
                result.latencies.append(time.perf_counter() - conn.started)
                if len(result.latencies) >= 20000:
                    result.latencies, sample_every = result.latencies[::2], sample_every * 2
            if closes:
                conn.reopen()
            idle.append(conn)
    result.seconds = time.perf_counter() - start
    for conn in pool:
        conn.close()
    queue.put(result)


def run_load(port: int, requests: list[bytes], *, processes: int = 2, connections: int = 8, seconds: float = 5.0,
             rate: float | None = None, count: int | None = None) -> LoadResult:
    """Run the load from processes of connections each (requests split between processes); merge the results."""
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    shares = [requests[i::processes] or requests for i in range(processes)]
    workers = [ctx.Process(target=_run, args=(port, shares[i], connections, seconds,
                                              rate / processes if rate else None,
                                              -(-count // processes) if count else None, queue))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    merged = LoadResult(seconds=max(r.seconds for r in results))
    for r in results:
        merged.answered += r.answered
        merged.latencies += r.latencies
        merged.statuses.update(r.statuses)
    return merged


# wrk (Debian's package), when installed, drives the closed-loop runs: it spends a fraction of the CPU a
# Python client does, which on a 2-core machine leaves more of it to the servers being compared.
WRK_SCRIPT = """
local requests = {}
init = function(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local at = 1
  while at <= #data do
    local size = tonumber(data:sub(at, at + 9))
    requests[#requests + 1] = data:sub(at + 10, at + 9 + size)
    at = at + 10 + size
  end
  counter = tonumber(args[2])
end
request = function()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %f %f\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, requests: list[bytes], *, connections: int = 16, seconds: float = 5.0) -> LoadResult:
    """Run wrk (one thread) for seconds, sending the requests in turn; latencies holds its p50 and p99 only."""
    with tempfile.TemporaryDirectory() as folder:
        script, data = Path(folder) / "requests.lua", Path(folder) / "requests.bin"
        script.write_text(WRK_SCRIPT)
        data.write_bytes(b"".join(b"%010d" % len(r) + r for r in requests))
        out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s",
                              "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}/", "--", str(data),
                              "0"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    answered, micros, bad_status, socket_errors, _timeouts, p50, p99 = line.split()[1:]
    result = LoadResult(answered=int(answered), seconds=int(micros) / 1e6, latencies=[float(p50) / 1e6,
                                                                                      float(p99) / 1e6])
    result.statuses.update({200: int(answered) - int(bad_status), 500: int(bad_status)})
    if int(socket_errors):
        result.statuses[0] = int(socket_errors)
    return result
