"""A small SMTP server on a real loopback socket, for tests that deliver mail from other processes.

It speaks enough SMTP for `smtplib` (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and keeps
what it accepted: each message's Message-ID, envelope recipients and subject. A message counts
as accepted only once the final `250` after DATA has been written, as for a real mail server.

Two ways to misbehave on purpose:
- `stall(n)`: hold the n-th DATA (counted from the start) after the message has arrived and
  before answering; `stalled` is set while a client waits. If the client goes away meanwhile
  (its process was killed), the message is discarded and recorded in `aborted`; `release()`
  lets a live client have its answer.
- `refuse = 451` (any code): answer MAIL FROM with it, so every delivery fails at once;
  `stop()` closes the listening socket, so connections are refused.
"""
from __future__ import annotations

import select
import socket
import socketserver
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any


@dataclass(frozen=True)
class Accepted:
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str


@dataclass
class _Transaction:
    sender: str = ""
    recipients: list[str] = field(default_factory=list)


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.accepted: list[Accepted] = []
        self.aborted: list[str] = []  # Message-IDs of stalled messages whose client went away
        self.refused = 0  # MAIL commands answered with `refuse`
        self.refuse: int | None = None
        self.data_seen = 0  # DATA transfers completed by clients (accepted, stalled or not)
        self.stalled = threading.Event()
        self._release = threading.Event()
        self._stall_at: set[int] = set()
        self._lock = threading.Lock()
        self._closing = False
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 60

            def handle(self) -> None:
                sink._session(self)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((host, port), Handler)
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"smtp-sink-{self.port}", daemon=True)
        self._running = False

    # -- control -------------------------------------------------------------------------
    def start(self) -> "SmtpSink":
        self._thread.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop listening (new connections are refused) and let any stalled client go."""
        self._closing = True
        self._release.set()
        if self._running:
            self._server.shutdown()
            self._running = False
        self._server.server_close()

    def stall(self, ordinal: int) -> None:
        """Hold the `ordinal`-th DATA (1-based, counted over the sink's life) before answering."""
        with self._lock:
            self._stall_at.add(ordinal)
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    # -- reading what happened -----------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def messages(self) -> list[Accepted]:
        with self._lock:
            return list(self.accepted)

    def by_message_id(self) -> Counter[str]:
        return Counter(m.message_id for m in self.messages())

    def by_recipient_and_subject(self) -> Counter[tuple[str, str]]:
        return Counter((rcpt, m.subject) for m in self.messages() for rcpt in m.recipients)

    def wait_for(self, n: int, timeout: float) -> bool:
        """True once at least `n` messages were accepted; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.05)
        return self.count() >= n

    # -- the protocol --------------------------------------------------------------------
    def _session(self, h: socketserver.StreamRequestHandler) -> None:
        def reply(text: str) -> None:
            h.wfile.write(text.encode() + b"\r\n")
            h.wfile.flush()

        tx = _Transaction()
        reply("220 sink.test ESMTP ready")
        while True:
            try:
                raw = h.rfile.readline(65536)
            except (OSError, TimeoutError):
                return
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            arg = line[4:].strip()
            if verb == "EHLO":
                reply("250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8")
            elif verb == "HELO":
                reply("250 sink.test")
            elif verb == "MAIL":
                if self.refuse is not None:
                    with self._lock:
                        self.refused += 1
                    reply(f"{self.refuse} 4.3.2 sink refuses mail for now")
                    continue
                tx = _Transaction(sender=_address(arg))
                reply("250 2.1.0 sender ok")
            elif verb == "RCPT":
                if not tx.sender:
                    reply("503 5.5.1 MAIL first")
                    continue
                tx.recipients.append(_address(arg))
                reply("250 2.1.5 recipient ok")
            elif verb == "DATA":
                if not tx.recipients:
                    reply("503 5.5.1 RCPT first")
                    continue
                reply("354 end data with <CR><LF>.<CR><LF>")
                data = self._read_data(h)
                if data is None:
                    return
                if not self._answer_data(h, tx, data, reply):
                    return
                tx = _Transaction()
            elif verb == "RSET":
                tx = _Transaction()
                reply("250 2.0.0 reset")
            elif verb == "NOOP":
                reply("250 2.0.0 ok")
            elif verb == "QUIT":
                reply("221 2.0.0 bye")
                return
            else:
                reply("502 5.5.2 command not implemented")

    @staticmethod
    def _read_data(h: socketserver.StreamRequestHandler) -> bytes | None:
        lines: list[bytes] = []
        while True:
            try:
                raw = h.rfile.readline(1 << 20)
            except (OSError, TimeoutError):
                return None
            if not raw:
                return None
            if raw in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(raw[1:] if raw.startswith(b"..") else raw)

    def _answer_data(self, h: socketserver.StreamRequestHandler, tx: _Transaction, data: bytes, reply: Any) -> bool:
        message = message_from_bytes(data, policy=policy.default)
        message_id = str(message.get("Message-ID", "")).strip()
        with self._lock:
            self.data_seen += 1
            stall = self.data_seen in self._stall_at
        if stall:
            self.stalled.set()
            while not self._release.wait(0.05):
                if _peer_gone(h.connection):
                    with self._lock:
                        self.aborted.append(message_id)
                    return False
            if self._closing or _peer_gone(h.connection):
                with self._lock:
                    self.aborted.append(message_id)
                return False
        try:
            reply("250 2.0.0 queued")
        except OSError:
            with self._lock:
                self.aborted.append(message_id)
            return False
        with self._lock:
            self.accepted.append(Accepted(message_id, tx.sender, tuple(tx.recipients), str(message["Subject"])))
        return True

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _address(arg: str) -> str:
    """The address in `FROM:<a@b> SIZE=…` or `TO:<a@b>`."""
    start, end = arg.find("<"), arg.find(">")
    return arg[start + 1:end] if 0 <= start < end else arg.partition(":")[2].strip()


def _peer_gone(conn: socket.socket) -> bool:
    """True if the client closed its end (its process died): readable with nothing to read."""
    try:
        readable, _w, _x = select.select([conn], [], [], 0)
        if not readable:
            return False
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
