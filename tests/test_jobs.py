"""rq wiring: a decision enqueues delivery after commit; a worker delivers exactly once."""
from __future__ import annotations

import re

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import select

from jobs.queue import connection
from tests.conftest import build_app
from tests.support import TO_AWAITING
from workflow.models import Notification


@pytest.mark.redis
def test_decision_enqueues_and_worker_delivers(api, app, session):
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    with app.app_context():
        conn = connection()
        queue = Queue(app.config["RQ_QUEUE"], connection=conn)
        # accept and approve, each to the three applicants of org1
        assert queue.count == 6
        worker = SimpleWorker([queue], connection=conn)
        assert worker.work(burst=True)
    rows = session.scalars(select(Notification).where(Notification.case_id == case_id)).all()
    assert len(rows) == 6 and all(r.delivered_at is not None and r.attempts == 1 for r in rows)
    # a job delivered twice does not deliver twice
    from jobs.notify import deliver

    with app.app_context():
        assert deliver(rows[0].id) == "already handled"


@pytest.mark.redis
def test_rolled_back_transition_enqueues_nothing(api, app):
    case_id = api.ready()
    api.advance(case_id, ("submit", "ngo"))
    assert api.act(case_id, "return_for_correction", "intake", comment="").status_code == 422
    with app.app_context():
        assert Queue(app.config["RQ_QUEUE"], connection=connection()).count == 0


def test_redis_down_does_not_block_decisions(backend, tmp_path, world, app):
    """With Redis unreachable the decision still commits; the outbox row waits for delivery."""
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    app.extensions.pop("redis", None)
    from tests.support import Api

    api = Api(app.test_client(), world)
    case_id = api.ready()
    r = api.advance(case_id, ("submit", "ngo"), ("accept", "intake"))
    assert r.get_json()["state"] == "under_review"


# -- e-mail: one connection per worker process, batches of rows ---------------------------------

def _message(n: int) -> tuple[str, str, bytes]:
    from jobs.notify import _message as build

    to = f"ngo{n}@test.ir"
    return "no-reply@test.ir", to, build("no-reply@test.ir", to, f"موضوع {n}", "متن", f"<n{n}@test.ir>")


def test_mailer_keeps_its_connection_and_reconnects_once_the_server_dropped_it():
    import time

    from jobs.mailer import Mailer
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    sink._server.RequestHandlerClass.timeout = 0.3  # the server ends a session idle this long
    mailer = Mailer(timeout=5)
    try:
        mailer.send(sink.host, sink.port, *_message(1))
        mailer.send(sink.host, sink.port, *_message(2))
        assert sink.wait_for(2, 5) and mailer.connections == 1
        time.sleep(0.8)  # the server has closed the idle session; the client finds out at MAIL FROM
        mailer.send(sink.host, sink.port, *_message(3))
        assert mailer.connections == 2 and sink.wait_for(3, 5)
        assert sink.by_message_id() == {"<n1@test.ir>": 1, "<n2@test.ir>": 1, "<n3@test.ir>": 1}
    finally:
        mailer.close(quit=True)
        sink.stop()


def test_mailer_does_not_repeat_a_message_whose_data_was_sent():
    """No answer after DATA: the server may have the message, so the mailer raises instead of
    sending it again, and drops the connection (its session is in an unknown state)."""
    import smtplib

    from jobs.mailer import Mailer
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    mailer = Mailer(timeout=0.5)
    try:
        mailer.send(sink.host, sink.port, *_message(1))
        sink.stall(2)
        with pytest.raises((OSError, smtplib.SMTPException)):
            mailer.send(sink.host, sink.port, *_message(2))
        assert sink.data_seen == 2 and mailer.connections == 1
        sink.release()
        mailer.send(sink.host, sink.port, *_message(3))
        assert mailer.connections == 2 and sink.wait_for(2, 5) and "<n2@test.ir>" not in sink.by_message_id()
    finally:
        mailer.close()
        sink.stop()


@pytest.fixture
def mail_app(app):
    """The app delivering to a loopback sink, with the process's mailer forgotten around the test."""
    from jobs.mailer import mailer
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    app.config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port)
    mailer.close()
    yield app, sink
    mailer.close()
    sink.stop()


@pytest.fixture(params=["native", "core"])
def row_access(request, monkeypatch):
    """Delivery's own row access for the backend (pipelined on PostgreSQL), and the SQLAlchemy Core
    one every backend can use, which SQLite (`make run`) gets."""
    import contextlib

    from jobs import notify

    if request.param == "core":
        @contextlib.contextmanager
        def core_rows():
            from workflow import db

            with db.engine().connect() as conn:
                yield notify._CoreRows(conn)

        monkeypatch.setattr(notify, "_rows", core_rows)
    return request.param


@pytest.mark.redis
def test_a_failing_row_in_a_batch_is_retried_alone(api, session, mail_app, monkeypatch, row_access):
    from datetime import timedelta
    import smtplib

    from rq.registry import ScheduledJobRegistry

    from jobs import notify
    from workflow.models import utcnow

    app, sink = mail_app
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    rows = session.scalars(select(Notification).where(Notification.case_id == case_id).order_by(Notification.id)).all()
    ids = [r.id for r in rows]
    failing = rows[2]
    real_send = notify.mailer.send

    def send(host, port, sender, recipient, message):
        if re.search(rb"\r\nMessage-ID: <n%d[.@]" % failing.id, message):
            raise smtplib.SMTPRecipientsRefused({recipient: (450, b"mailbox busy")})
        real_send(host, port, sender, recipient, message)

    monkeypatch.setattr(notify.mailer, "send", send)
    before, opened = utcnow(), notify.mailer.connections
    with app.app_context():
        Queue(app.config["RQ_QUEUE"], connection=connection()).empty()
        assert notify.deliver_batch(ids) == "delivered 5, retrying 1"
        assert notify.deliver_batch(ids) == "already handled 5, retrying 1"  # nobody gets a second copy
        scheduled = ScheduledJobRegistry(app.config["RQ_QUEUE"], connection=connection())
        jobs = [Job.fetch(i, connection=connection()) for i in scheduled.get_job_ids()]
    assert sink.wait_for(5, 5) and len(sink.by_message_id()) == 5 and notify.mailer.connections == opened + 1
    session.expire_all()
    row = session.get(Notification, failing.id)
    assert row.delivered_at is None and row.failed_at is None and row.attempts == 2
    assert "450" in row.last_error and row.enqueued_at >= before + timedelta(seconds=notify.RETRY.intervals[0] - 1)
    assert {(j.func_name, j.args) for j in jobs} == {("jobs.notify.deliver", (failing.id,))}
    assert all(j.retries_left == notify.MAX_ATTEMPTS - 2 for j in jobs)
    assert all(session.get(Notification, i).attempts == 1 for i in ids if i != failing.id)


@pytest.mark.redis
def test_a_batch_waits_when_the_server_is_unreachable(api, session, mail_app):
    from rq.registry import ScheduledJobRegistry

    from jobs import notify

    app, sink = mail_app
    sink.stop()  # connections are refused from now on
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    ids = sorted(session.scalars(select(Notification.id).where(Notification.case_id == case_id)))
    with app.app_context():
        Queue(app.config["RQ_QUEUE"], connection=connection()).empty()
        assert notify.deliver_batch(ids) == "retrying 1, waiting 5"
        scheduled = ScheduledJobRegistry(app.config["RQ_QUEUE"], connection=connection())
        jobs = {Job.fetch(i, connection=connection()).func_name: Job.fetch(i, connection=connection()).args
                for i in scheduled.get_job_ids()}
    assert jobs == {"jobs.notify.deliver": (ids[0],), "jobs.notify.deliver_batch": (ids[1:],)}
    session.expire_all()
    first, *rest = (session.get(Notification, i) for i in ids)
    assert first.attempts == 1 and first.last_error.startswith("ConnectionRefusedError")
    assert all(r.attempts == 0 and r.last_error is None and r.enqueued_at > first.created_at for r in rest)


@pytest.mark.parametrize("subject, body", [
    ("Case 12 is due today", "Case 12 is due today\nDue: 1405/01/15"),
    ("درخواست ۱۲: ۷ روز تا پایان مهلت اصلاح مانده است؛ " * 3, "خط اول\n" + "متن بلند " * 60 + "\n.\n..نقطه"),
])
def test_message_reads_back_as_written(subject, body):
    from email import message_from_bytes, policy

    from jobs.notify import _message

    raw = _message("no-reply@test.ir", "ngo@test.ir", subject, body, "<n7.case.7.1.sla_due.3@test.ir>")
    assert all(len(line) <= 78 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == subject and message["To"] == "ngo@test.ir" and message["From"] == "no-reply@test.ir"
    assert message["Message-ID"] == "<n7.case.7.1.sla_due.3@test.ir>"
    assert message.get_content_type() == "text/plain" and message.get_content() == body + "\n"


@pytest.mark.redis
def test_a_server_that_stops_answering_holds_up_one_row_not_the_batch(api, session, mail_app, monkeypatch):
    """No answer after DATA: that row is retried later on its own (the server may have it: same
    Message-ID), and the rows after it wait for the retry interval instead of each timing out."""
    from jobs import notify

    app, sink = mail_app
    monkeypatch.setattr(notify.mailer, "timeout", 0.5)
    case_id = api.ready()
    api.advance(case_id, *TO_AWAITING, ("approve", "director"))
    ids = sorted(session.scalars(select(Notification.id).where(Notification.case_id == case_id)))
    sink.stall(sink.data_seen + 2)
    with app.app_context():
        Queue(app.config["RQ_QUEUE"], connection=connection()).empty()
        assert notify.deliver_batch(ids) == "delivered 1, retrying 1, waiting 4"
    sink.release()
    session.expire_all()
    rows = [session.get(Notification, i) for i in ids]
    assert rows[0].delivered_at is not None
    assert rows[1].attempts == 1 and rows[1].last_error.startswith(("TimeoutError", "SMTPServerDisconnected"))
    assert all(r.attempts == 0 and r.delivered_at is None and r.enqueued_at > rows[1].created_at for r in rows[2:])
