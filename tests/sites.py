"""A site started by ./run-srs.sh in a test: its supervised programs, stopped at once, its Redis keys removed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import redis


def supervised_pid(log_folder: Path, program: str) -> int | None:
    """The pid of one of run-srs.sh's programs (web, worker, beat, ...) as its supervisord tells, None when it
    does not run; log_folder is the site's LOG_FOLDER (supervisord's configuration is in its run/ folder)."""
    conf = log_folder / "run" / "supervisord.conf"
    out = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "supervisorctl"), "-c", str(conf), "pid", program],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return int(out) if out.isdigit() and int(out) > 0 else None


def kill_site(proc: subprocess.Popen) -> None:
    """Kill run-srs.sh's supervisord and every process it started, without waiting for a graceful stop (5-7 s,
    mostly the workers' warm shutdown): nothing of a test site is kept. (test_broker_restart.py checks that
    SIGTERM stops them all.)

    Each supervised program leads a process group of its own (supervisord's setpgrp), which signalling
    supervisord's group does not reach: supervisord is frozen first, so that it restarts none of them, then each
    descendant's group is killed, then supervisord's."""
    try:
        supervisord = psutil.Process(proc.pid)
        supervisord.suspend()
        descendants = supervisord.children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    for child in descendants:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while alive := [p for p in descendants if _running(p)]:
        assert time.monotonic() < deadline, f"run-srs.sh's processes outlived SIGKILL: {alive}"
        time.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    """Neither gone nor a zombie (dead, left for init to reap once supervisord is gone)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def forget_site(env: dict[str, str]) -> None:
    """Remove the site's Redis keys (its queues, limits, caches, kombu's bindings) and the messages its killed
    workers held unacknowledged, which kombu would otherwise hand back to a queue nobody reads."""
    namespace = env["CELERY_TASK_QUEUE"]
    ours = re.compile(re.escape(namespace.encode()) + rb"(?![0-9])")  # not the site on port 12345 for 1234
    for url in {env["CELERY_BROKER_URL"], env.get("REDIS_URL", env["CELERY_BROKER_URL"])}:
        r = redis.Redis.from_url(url)
        stale = [key for key in r.scan_iter(match=f"*{namespace}*") if ours.search(key)]
        if stale:
            r.delete(*stale)
    r = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    queues = {namespace, namespace + ".baseline"}
    for tag, message in r.hgetall("unacked").items():
        if json.loads(message)[-1] in queues:
            r.hdel("unacked", tag)
            r.zrem("unacked_index", tag)
