"""The audit log under /admin/audit, for the staff: as a page and as CSV."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from app.routes.access import staff_only
from app.services import audit

bp = Blueprint("audit_log", __name__, url_prefix="/admin")
bp.before_request(staff_only)


@bp.get("/audit")
def index():
    """The audit log, newest first, filtered by action."""
    action = (request.args.get("action") or "").strip()[:64] or None
    pager = audit.entries_page(action, request.args.get("page", 1, type=int), current_app.config["AUDIT_PER_PAGE"])
    return render_template("schedule/audit.html", pager=pager, action=action, actions=audit.actions())


@bp.get("/audit.csv")
def csv():
    """The audit log as CSV (spreadsheet-safe)."""
    action = (request.args.get("action") or "").strip()[:64] or None
    return Response(
        audit.export_csv(action),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=srs-audit-log.csv"},
    )
