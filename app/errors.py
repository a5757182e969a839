"""Error handlers: JSON {"error", "message"} under /api, HTML pages elsewhere; 500 rolls the session back.

Every CompetitionError a service raises is answered here, so views let them propagate.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.forms import UploadForm
from app.services.errors import CompetitionError, UploadRefused

MESSAGES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Authentication is required: send a valid token."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "There is nothing here."),
    405: ("method_not_allowed", "This method is not allowed here."),
    409: ("conflict", "This cannot be done in the competition's current state."),
    413: ("too_large", "The file is too large."),
    422: ("invalid_file", "The file failed its checks."),
    429: ("too_many_requests", "Too many requests: wait a little and try again."),
    500: ("internal_error", "Something went wrong on our side; it has been logged."),
    503: ("unavailable", "The service is temporarily unavailable: try again in a minute."),
    507: ("insufficient_storage", "The platform is out of storage space: try again later."),
}


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str | None = None, code: str | None = None):
    default_code, default_message = MESSAGES.get(status, ("error", "Error."))
    code, message = code or default_code, message or default_message
    if wants_json():
        return jsonify(error=code, message=message), status
    return render_template("errors/error.html", status=status, message=message), status


# Pages holding an upload form, by endpoint: each renders the page around an UploadForm.
FORM_PAGES: dict[str, Callable[[UploadForm], str]] = {}


def form_page(endpoint: str):
    """Register page(form) as the renderer of endpoint's upload page, which shows a refusal on its file field."""

    def register(page: Callable[[UploadForm], str]) -> Callable[[UploadForm], str]:
        FORM_PAGES[endpoint] = page
        return page

    return register


def competition_error(e: CompetitionError):
    """JSON under /api, else the error page; a refused upload is shown on its page instead (see upload_page).
    Whatever the refused request had started in the session is rolled back: nothing half-done is kept."""
    db.session.rollback()
    page = upload_page(e) if isinstance(e, UploadRefused) and not wants_json() else None
    response = make_response(page or error_response(e.status, e.message, e.code))
    if e.retry_after:
        response.headers["Retry-After"] = str(e.retry_after)
    return response


def upload_page(e: UploadRefused):
    """The page's closed notice when the phase or team bars the upload; else the form again, with why on its
    file field; None on a page with no upload form."""
    if e.closes_page:
        templates = [f"{request.blueprint}/closed.html", "errors/error.html"]
        return render_template(templates, message=e.message, status=e.status), e.status
    if request.endpoint in FORM_PAGES:
        form = UploadForm()
        form.file.errors = [e.message]
        return FORM_PAGES[request.endpoint](form), e.status
    return None


def init_app(app: Flask) -> None:
    app.register_error_handler(CompetitionError, competition_error)

    @app.errorhandler(CSRFError)
    def csrf_error(e: CSRFError):
        return error_response(
            400, "The form expired or lacks its security token: reload the page and try again.", "csrf_failed"
        )

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code == 413:
            return error_response(
                413, f"The file is larger than {app.config['MAX_UPLOAD_MB']} MB: compress or trim it."
            )
        if e.code == 429:
            return error_response(429, f"Too many attempts ({e.description}): wait a few minutes and try again.")
        message = e.description if e.description and e.description != type(e).description else None
        response = make_response(error_response(e.code or 500, message))
        for name, value in e.get_headers():
            if name.lower() in ("allow", "retry-after", "www-authenticate"):  # what the status needs (RFC 9110)
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unhandled(e: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500)
