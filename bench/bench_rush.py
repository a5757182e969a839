"""Deadline rush: N teams upload the sample defence within one minute through the API (issue 12).

Run (from the repository root, with the project's venv):

    python bench/bench_rush.py [--uploads 100] [--within 60] [--workers 2] [--timeout 1800] [--no-fail]

What it builds: its own redis-server on a free port, a fresh SQLite database and folders in a temporary
directory, and the real `./run-srs.sh --production` on a free loopback port (gunicorn, supervisord, a
worker with --workers pool processes, the scheduler). It adds one team per upload (one student each, API
tokens issued in-process) and opens the Defence phase.

What it measures:
- the single evaluation time: one upload alone, created_at -> finished_at of its submission;
- the rush: --uploads POSTs of attack_defence_test_scripts/test_defence.csv.zip to /api/v1/defences, one per
  team, started evenly over --within seconds (a thread each, so slow answers do not delay later starts);
  latency = request start -> full 202 answer; p50 / p95 / max;
- the drain time: first rush request -> last submission finished (read from the API);
- peak resident memory of each supervised process (and its children), sampled every 0.5 s.

Targets (issue 12): every upload answered 202 with p95 <= 1 s, every submission succeeded exactly once
(one accepted defence per upload), drain <= the later of 1.3 x uploads x single / workers (the backlog) and
within + 3 x single (the last arrivals, when the workers keep up). Exit 1 when missed (unless
--no-fail), 2 on errors. Loopback only; bounded by --uploads and --timeout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from stack import MemorySampler, Stack, call, wait

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip"


def seconds(stamp_a: str, stamp_b: str) -> float:
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(stamp_b) - parse(stamp_a)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--within", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.uploads <= 500:
        parser.error("--uploads must be between 1 and 500")

    stack = Stack(ROOT, workers=args.workers, prefix="srs-rush-")
    url = stack.url
    sampler = None
    with stack:
        sampler = MemorySampler(stack.supervisord)
        sampler.start()
        tokens = stack.make_teams(args.uploads + 1, prefix="rush")
        admin = stack.admin_token()
        stack.open_phase("Defence")
        body = SAMPLE.read_bytes()

        # one evaluation alone: the reference the drain time is held to
        status, answer = call(url + "/api/v1/defences", method="POST", token=tokens[-1], body=body)
        assert status == 202, answer
        lone = _finished(url, tokens[-1], [answer["submission_id"]], 600)[0]
        assert lone["status"] == "succeeded", lone
        single = seconds(lone["created_at"], lone["finished_at"])

        latencies: list[float] = [0.0] * args.uploads
        answers: list = [None] * args.uploads
        start = time.monotonic()
        started_wall = datetime.now().astimezone()

        def upload(i: int) -> None:
            time.sleep(max(0.0, start + i * args.within / args.uploads - time.monotonic()))
            t = time.monotonic()
            answers[i] = call(url + "/api/v1/defences", method="POST", token=tokens[i], body=body)
            latencies[i] = time.monotonic() - t

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(args.uploads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refused = [a for a in answers if a is None or a[0] != 202]
        ids = [a[1]["submission_id"] for a in answers if a and a[0] == 202]
        results = _finished(url, admin, ids, args.timeout)
        last = max(r["finished_at"] for r in results)
        drain = (datetime.fromisoformat(last.replace("Z", "+00:00")) - started_wall).total_seconds()
        succeeded = sum(r["status"] == "succeeded" for r in results)
        defences = _defence_rows(stack.env)
        sampler.stop.set()

    p50, p95 = statistics.median(latencies), statistics.quantiles(latencies, n=20, method="inclusive")[18]
    # When the workers keep up with the arrivals, the queue empties soon after the last one (allowed: three
    # evaluations); when they do not, after each worker's share of the backlog (allowed: 30 % more).
    backlog = args.uploads * single / args.workers
    floor = max(1.3 * backlog, args.within + 3 * single)
    print(f"uploads: {args.uploads} over {args.within:.0f} s, {args.workers} worker processes, sample {len(body)} B")
    print(f"answered 202: {args.uploads - len(refused)}/{args.uploads}")
    print(f"upload latency: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    print("  (target p95 <= 1000 ms)")
    print(f"single evaluation: {single:.1f} s")
    print(
        f"drain time: {drain:.1f} s   (target <= max(1.3 x {args.uploads} x {single:.1f} / {args.workers}, "
        f"{args.within:.0f} + 3 x {single:.1f}) = {floor:.1f} s: set by the backlog or by the arrivals)"
    )
    print(f"succeeded: {succeeded}/{len(ids)}; accepted defences per upload: {sorted(set(defences.values()))}")
    for name, peak in sorted(sampler.peaks.items()):
        print(f"peak memory {name}: {peak / 2**20:.0f} MiB")
    print(f"logs: {stack.base}")
    ok = not refused and p95 <= 1.0 and succeeded == len(ids) == args.uploads and drain <= floor
    ok = ok and len(defences) == args.uploads + 1 and set(defences.values()) == {1}
    print("TARGETS MET" if ok else "TARGETS MISSED")
    return 0 if ok or args.no_fail else 1


def _finished(url: str, token: str, ids: list[int], timeout: float) -> list[dict]:
    pending, done = set(ids), {}

    def all_done():
        for submission_id in list(pending):
            status, body = call(f"{url}/api/v1/submissions/{submission_id}", token=token)
            if status == 200 and body["status"] in ("succeeded", "failed"):
                done[submission_id] = body
                pending.discard(submission_id)
        return not pending

    wait(all_done, timeout, f"{len(pending)} submissions to finish")
    return [done[i] for i in ids]


def _defence_rows(env: dict[str, str]) -> dict[int, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT submission_id, count(*) FROM defence GROUP BY submission_id")).all()
    engine.dispose()
    return dict(rows)


if __name__ == "__main__":
    sys.exit(main())
