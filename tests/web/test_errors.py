"""One handler answers every CompetitionError: JSON {"error", "message"} under /api, the error page elsewhere."""

from __future__ import annotations

import pytest

from app.errors import competition_error
from app.services import errors
from app.services.errors import CompetitionError, Conflict, NotFound, QuotaExceeded
from tests import factories


def answer(app, path: str, error: CompetitionError):
    with app.test_request_context(path):
        return competition_error(error)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFound("There is no round 7."), 404, "not_found"),
        (Conflict("Round 2 was already generated.", code="round_conflict"), 409, "round_conflict"),
        (errors.Invalid("Choose a date."), 400, "bad_request"),
        (errors.Unavailable("No reference yet."), 503, "unavailable"),
    ],
)
def test_under_api_the_answer_is_json_with_the_status_code_and_message(app, error, status, code):
    response = answer(app, "/api/v1/anything", error)
    assert response.status_code == status
    assert response.get_json() == {"error": code, "message": error.message}


def test_elsewhere_the_answer_is_the_error_page_with_the_message(app):
    response = answer(app, "/leaderboard/", NotFound("There is no round 7: rounds go from 1 to 2."))
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "There is no round 7: rounds go from 1 to 2." in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/submissions", "/leaderboard/"])
def test_a_quota_error_says_when_to_retry(app, path):
    response = answer(app, path, QuotaExceeded("Your team reached its quota.", retry_after=3600))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3600"


def test_a_service_error_raised_in_a_view_reaches_the_user(client, auth, alice):
    """No view catches NoSuchRound: the handler answers it, as JSON under /api and as a page elsewhere."""
    body = client.get("/api/v1/leaderboard?round=7", headers=factories.api_token(alice))
    assert body.status_code == 404
    assert body.get_json()["error"] == "not_found" and "There is no round 7" in body.get_json()["message"]
    auth.login()
    page = client.get("/leaderboard/?round=7")
    assert page.status_code == 404 and "There is no round 7" in page.get_data(as_text=True)


def test_every_service_error_is_a_competition_error():
    from app.services import accounts, announcements, exports, references, reruns, rescore, round_sets, rounds, schedule

    kinds = [
        accounts.AccountError,
        announcements.AnnouncementError,
        exports.ExportError,
        references.ReferenceRefused,
        references.NoReference,
        reruns.RerunRefused,
        rescore.RescoreError,
        round_sets.SetsNotReady,
        rounds.NoSuchRound,
        rounds.RoundConflict,
        schedule.ScheduleError,
        schedule.AlreadyApplied,
        errors.UploadRefused,
    ]
    assert [k.__name__ for k in kinds if not issubclass(k, CompetitionError)] == []
