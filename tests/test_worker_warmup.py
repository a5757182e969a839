"""A worker's start-up hooks: they prepare what a first task would pay for, and never stop a worker starting."""

from types import SimpleNamespace

import pyarrow as pa

from app.tasks import warmup


def test_the_parent_hands_arrow_memory_back_and_a_failure_only_logs(app, caplog, monkeypatch):
    monkeypatch.setattr(warmup.log, "disabled", False)  # an Alembic upgrade earlier in the session disables loggers
    previous = pa.default_memory_pool()
    try:
        warmup.prepare_parent(sender=SimpleNamespace(app=app.extensions["celery"]))
        assert pa.default_memory_pool().backend_name == "system"
        warmup.prepare_parent(sender=SimpleNamespace(app=SimpleNamespace(flask_app="not an app")))
        assert "warm-up failed" in caplog.text
    finally:
        pa.set_memory_pool(previous)


def test_a_pool_process_warms_up_without_touching_files(app, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    warmup.prepare_pool_process()
    assert list(work.iterdir()) == []
