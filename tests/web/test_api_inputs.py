"""What the API fuzzer (tests/client/test_fuzz_api.py) found on its first run, each pinned by a plain test:
numbers beyond 64 bits in a path, query numbers that are not numbers, unknown query parameters, 405 without
`Allow`, a partial competition change and its null."""

from __future__ import annotations

import pytest

from tests import factories

HUGE = 2**64 + 7  # beyond a database integer


@pytest.fixture
def staff(app):
    return factories.api_token(factories.make_user("boss", admin=True))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", f"/api/v1/schedule/{HUGE}"),
        ("POST", f"/api/v1/rounds/{HUGE}/close"),
        ("GET", f"/api/v1/submissions/{HUGE}"),
    ],
)
def test_a_number_beyond_64_bits_in_a_path_is_not_found(client, staff, method, path):
    response = client.open(path, method=method, headers=staff)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/api/v1/leaderboard?round=two", "round must be a whole number"),
        ("/api/v1/matches?round=null", "round must be a whole number"),
        ("/api/v1/submissions?per_page=null", "per_page must be a whole number from 1 to 100"),
        ("/api/v1/submissions?per_page=101", "per_page must be a whole number from 1 to 100"),
        ("/api/v1/leaderboard?round=1&round=2", "Send round once"),
        ("/api/v1/leaderboard?rund=1", "Unknown query parameter 'rund': this call takes round"),
        ("/api/v1/me?verbose=1", "this call takes no query parameter"),
    ],
)
def test_a_bad_query_is_refused_with_what_is_wrong(client, staff, url, named):
    response = client.get(url, headers=staff)
    assert response.status_code == 400 and named in response.get_json()["message"]


def test_a_405_says_which_methods_are_allowed(client, staff):
    response = client.open("/api/v1/me", method="PATCH", headers=staff)
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET"}
    page = client.open("/login", method="PUT")
    assert page.status_code == 405 and "POST" in page.headers["Allow"]


def test_a_competition_change_may_name_one_field_but_not_a_null(client, staff):
    assert client.put("/api/v1/competition", headers=staff, json={"phase": "Defence"}).status_code == 200
    refused = client.put("/api/v1/competition", headers=staff, json={"phase": "Attack", "registration_open": None})
    assert refused.status_code == 400 and "true or false" in refused.get_json()["message"]
    assert client.get("/api/v1/competition", headers=staff).get_json()["phase"] == "Defence"  # nothing half-done


@pytest.mark.parametrize(
    "url",
    [
        "/leaderboard/?round=" + str(HUGE),
        "/index?page=" + str(HUGE),
        "/admin/submissions/?page=" + str(HUGE),
        "/admin/similarity/?round=x",
    ],
)
def test_pages_refuse_numbers_they_cannot_use(client, auth, admin, url):
    auth.login("admin")
    response = client.get(url)
    assert response.status_code == 400 and "must be a whole number" in response.get_data(as_text=True)
