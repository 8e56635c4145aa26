"""A minimal threaded SMTP sink on loopback: accepts every message, counts it, keeps nothing else.

Enough of RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; it advertises
8BITMIME and SMTPUTF8 so Persian bodies go through unchanged. Each connection gets a thread,
so one slow client does not hold up the others. It counts messages and distinct Message-IDs (the
app's are stable per notification), which tells a repeated delivery apart from a new one.
"""
from __future__ import annotations

import re
import socketserver
import threading
import time


_MAKE_MSGID = re.compile(rb"^(\d+)\.(\d+)\.(\d+)\.(.+)@")


def _subject_key(message_id: bytes) -> bytes:
    """What names the notification in a Message-ID: the whole id when it is stable per
    notification; for email.utils.make_msgid's <time.pid.random.KEY@domain>, which changes on
    every attempt, only KEY, so two deliveries of one notification still count once."""
    inner = message_id.strip().strip(b"<>")
    made = _MAKE_MSGID.match(inner)
    return made.group(4) if made else inner


class _Handler(socketserver.StreamRequestHandler):
    server: "SmtpSink._Server"

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.server.sink._connection()
        self._reply("220 sink.local ESMTP bench sink")
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-sink.local\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n")
            elif verb == b"HELO":
                self._reply("250 sink.local")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self._reply("250 OK")
            elif verb == b"DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                message_id, in_header, reading_id = b"", True, False
                while True:
                    data = self.rfile.readline(1 << 20)
                    if not data or data == b".\r\n":
                        break
                    if not in_header:
                        continue
                    if data in (b"\r\n", b"\n"):
                        in_header = False
                    elif reading_id and data[:1] in (b" ", b"\t"):  # a folded header goes on
                        message_id += data.strip()
                    else:
                        reading_id = data[:11].lower() == b"message-id:"
                        if reading_id:
                            message_id = data[11:].strip()
                if not data:
                    return
                self.server.sink._message(_subject_key(message_id))
                self._reply("250 OK queued")
            elif verb == b"QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")


class SmtpSink:
    """Start with start(); `count`, `distinct` and `connections` may be read at any time."""

    class _Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128
        sink: "SmtpSink"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = self._Server((host, port), _Handler)
        self._server.sink = self
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.reset()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def reset(self) -> None:
        with self._lock:
            self.count = 0
            self.connections = 0
            self.ids: set[bytes] = set()
            self.first_at: float | None = None
            self.last_at: float | None = None

    @property
    def distinct(self) -> int:
        return len(self.ids)

    def _connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _message(self, key: bytes) -> None:
        now = time.perf_counter()
        with self._lock:
            self.count += 1
            if key:
                self.ids.add(key)
            self.first_at = self.first_at or now
            self.last_at = now

    def start(self) -> "SmtpSink":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="smtp-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
