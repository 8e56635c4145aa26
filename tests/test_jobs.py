"""rq wiring: a decision enqueues delivery after commit; a worker delivers exactly once."""
from __future__ import annotations

import pytest
from rq import Queue, SimpleWorker
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
