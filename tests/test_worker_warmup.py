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


def test_a_pool_process_hands_back_what_a_task_freed(app):
    """After a task, memory the heap kept for reuse goes back to the system (what an idle worker holds, and what
    the next upload's peak stands on)."""
    import subprocess
    import sys

    assert "app.tasks.memory" in app.extensions["celery"].conf.include  # every worker process connects the hook
    script = """
import numpy as np
from celery import signals
import app.tasks.memory
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) // 1024
blocks = [np.ones(100_000 // 8) for _ in range(600)]  # 60 MB in blocks the heap serves
keep = np.ones(100_000 // 8)  # still in use above them: the heap cannot shrink past it by itself
held = rss()
del blocks
freed = rss()
signals.task_postrun.send(sender=None, task_id="t", task=None, args=(), kwargs={}, retval=None, state="SUCCESS")
print(held, freed, rss())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=app.root_path + "/..")
    assert done.returncode == 0, done.stderr
    held, freed, after = map(int, done.stdout.split())
    assert freed > held - 10, "the C library handed the blocks back by itself: the test shows nothing"
    assert after < held - 40, (held, freed, after)
