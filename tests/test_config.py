import pytest

from workflow.config import Config


def test_production_requires_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("FLASK_ENV", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        Config()
    monkeypatch.setenv("SECRET_KEY", "k" * 32)
    cfg = Config()
    assert cfg.SECRET_KEY == "k" * 32 and cfg.SESSION_COOKIE_SECURE


def test_default_run_generates_and_keeps_a_key(monkeypatch, tmp_path):
    import workflow.config as config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_ENV", raising=False)
    monkeypatch.setattr(config, "INSTANCE", tmp_path)
    first = Config().SECRET_KEY
    assert len(first) == 64 and Config().SECRET_KEY == first
    assert Config().DATABASE_URL.startswith("sqlite:///")
