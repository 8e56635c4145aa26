"""Alembic, driven from the app so `init-db` and the tests migrate exactly as operators do."""
from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask

from .config import ROOT


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(app: Flask) -> None:
    engine = app.extensions["db_engine"]
    cfg = alembic_config(app.config["DATABASE_URL"])
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
