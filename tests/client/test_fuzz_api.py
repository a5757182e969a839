"""Property-based fuzzing of the API from its own OpenAPI document (Schemathesis), as a student and as staff.

Every operation gets generated requests, valid and invalid by the document; each answer must keep the contract:
no server error, a documented status code, the documented content type and body schema, an `Allow` header on
405, invalid input refused, and so on (Schemathesis's default checks). Fixed seed (derandomized) and a bounded
number of examples keep the suite's run short and repeatable; to fuzz longer, set SRS_FUZZ_EXAMPLES (for example
SRS_FUZZ_EXAMPLES=500 ./run-tests.sh tests/client/test_fuzz_api.py), or run the CLI against a live server:
schemathesis run http://127.0.0.1:5000/api/v1/openapi.json -H "Authorization: Bearer <token>".
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app import create_app
from app.models import Phase
from app.services import audit, competition
from tests import factories

EXAMPLES = int(os.environ.get("SRS_FUZZ_EXAMPLES", "12"))


# Operations are collected from the document an app serves; each test calls a fresh app of its own, with its
# database (case.call_and_validate(app=...)).
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
)


def _competition():
    """A competition in its attack phase with two teams; returns (student, staff)."""
    alice = factories.make_user("alice", team="al-bo")
    factories.make_user("bob", team="bo-bi")
    staff = factories.make_user("admin", admin=True)
    competition.update_state(phase=Phase.ATTACK, actor=audit.CLI)
    return alice, staff


@pytest.fixture
def student_headers(app):
    return factories.api_token(_competition()[0])


@pytest.fixture
def staff_headers(app):
    return factories.api_token(_competition()[1])


SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))


@schema.parametrize()
@SETTINGS
def test_the_api_keeps_its_contract_for_a_student(case, app, student_headers):
    case.call_and_validate(headers=student_headers, app=app)


@schema.parametrize()
@SETTINGS
def test_the_api_keeps_its_contract_for_staff(case, app, staff_headers):
    case.call_and_validate(headers=staff_headers, app=app)
