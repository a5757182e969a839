"""GET /healthz for load balancers and monitoring: no login, no secrets, a few cheap probes."""

from __future__ import annotations

from flask import Blueprint, jsonify

from app.services.health import check_health, storage_low

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """200 when database, Redis and storage answer (status "degraded" when the storage is running out of space,
    so monitoring sees it before uploads fail); 503 naming the parts that do not."""
    results = check_health()
    failed = [name for name, ok in results.items() if not ok]
    checks = {n: "ok" if ok else "failed" for n, ok in results.items()}
    low = storage_low() if results.get("storage") else None
    body = {"status": "failed" if failed else "degraded" if low is not None else "ok", "checks": checks}
    if low is not None:
        checks["storage"] = "low_space"
        body["degraded"] = ["storage"]
        body["storage_free_mb"] = low
    if failed:
        body["failed"] = failed
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"
    return response
