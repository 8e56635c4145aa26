"""One SMTP connection per worker process, kept open from one message (and job) to the next.

Opening a connection costs a TCP handshake, the greeting and EHLO, and QUIT at the end: more
than the message itself on a fast server. The delivery worker runs its jobs in its own process
(SimpleWorker), so a connection kept here serves every job that process runs.

A kept connection can have been dropped by the server meanwhile (idle timeout, restart, a 421
"closing"): that shows before DATA, at MAIL FROM, and then the message goes once more on a fresh
connection. A failure once DATA has started is never repeated here, since the server may have
accepted the message; the row's retry (same Message-ID) takes it. After any failure the
connection is closed, so the next message starts with a clean session; it is also closed when
the host changes and when the process exits.
"""
from __future__ import annotations

import atexit
import smtplib


class _SMTP(smtplib.SMTP):
    """smtplib.SMTP that remembers whether the current message reached DATA."""

    in_data = False

    def data(self, msg):  # type: ignore[no-untyped-def]
        self.in_data = True
        return super().data(msg)


class Mailer:
    def __init__(self, timeout: float = 30) -> None:
        self.timeout = timeout
        self._smtp: _SMTP | None = None
        self._address: tuple[str, int] | None = None
        self.connections = 0  # opened over the process's life
        # The last failure was in opening a session (refused, timed out, name unknown): the
        # server is unreachable rather than refusing one message.
        self.unreachable = False

    def send(self, host: str, port: int, sender: str, recipient: str, message: bytes) -> None:
        """Send `message` (headers and body, CRLF line ends) from `sender` to `recipient`."""
        if self._smtp is not None and self._address != (host, port):
            self.close()
        reused = self._smtp is not None
        smtp = self._smtp if reused else self._open(host, port)
        try:
            smtp.in_data = False
            _transmit(smtp, sender, recipient, message)
            return
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
            self.close()
            if not (reused and not smtp.in_data and _dropped(exc)):
                raise
        except BaseException:
            self.close()
            raise
        smtp = self._open(host, port)
        try:
            _transmit(smtp, sender, recipient, message)
        except BaseException:
            self.close()
            raise

    def _open(self, host: str, port: int) -> _SMTP:
        self.unreachable = True
        smtp = _SMTP(timeout=self.timeout)
        try:
            code, reply = smtp.connect(host, port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            smtp.ehlo_or_helo_if_needed()
        except BaseException:
            smtp.close()
            raise
        self.unreachable = False
        self._smtp, self._address = smtp, (host, port)
        self.connections += 1
        return smtp

    def close(self, quit: bool = False) -> None:
        """Drop the connection; QUIT first only if asked (after an error the session's state is
        unknown, and a hung server would hold us for the whole timeout)."""
        smtp, self._smtp, self._address = self._smtp, None, None
        if smtp is None:
            return
        try:
            if quit:
                smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            smtp.close()


def _transmit(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    options: tuple[str, ...] = ()
    if not (sender + recipient).isascii():
        # As smtplib's send_message does: an address outside ASCII needs the server's SMTPUTF8.
        if not smtp.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("a non-ASCII address needs SMTPUTF8, which the server lacks")
        options = ("SMTPUTF8", "BODY=8BITMIME")
    smtp.sendmail(sender, [recipient], message, options)


def timed_out(exc: BaseException) -> bool:
    """The server stopped answering: a socket timeout, which smtplib may report as a disconnection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _dropped(exc: BaseException) -> bool:
    """The server had closed the session: disconnected, reset, or answering 421 (closing)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError))


mailer = Mailer()
atexit.register(mailer.close, quit=True)
