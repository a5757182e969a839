"""The audit log under /admin/audit, for the staff: as a page and as CSV."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from app.routes.access import staff_only
from app.routes.params import query_int
from app.services import audit

bp = Blueprint("audit_log", __name__, url_prefix="/admin")
bp.before_request(staff_only)


@bp.get("/audit")
def index():
    """The audit log, newest first, filtered by action."""
    action = (request.args.get("action") or "").strip()[:64] or None
    pager = audit.entries_page(action, query_int("page", 1, minimum=1), current_app.config["AUDIT_PER_PAGE"])
    return render_template("schedule/audit.html", pager=pager, action=action, actions=audit.actions())


@bp.get("/audit.csv")
def csv():
    """The audit log as CSV (spreadsheet-safe)."""
    action = (request.args.get("action") or "").strip()[:64] or None
    body = audit.export_csv(action)  # read before this download is itself recorded
    audit.record_now(None, "download-audit-log", None, {"action": action})
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=srs-audit-log.csv"},
    )
