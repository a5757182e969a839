"""Registration end to end: the confirmation link, or the notice to an address that has an account, travels
through the worker's task to a real SMTP server; the answer to the form is the same either way."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from app.services import accounts
from tests import factories
from tests.integration.conftest import wait_for
from tests.integration.helpers import logged_in, mail_text

pytestmark = pytest.mark.integration


def form(username: str, email: str, sciper: str, team: str) -> dict[str, str]:
    return {
        "username": username,
        "email": email,
        "password": "long-enough-pw",
        "password2": "long-enough-pw",
        "sciper": sciper,
        "team_select": accounts.NEW_TEAM,
        "new_team_name": team,
    }


def page_text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def test_registration_is_confirmed_through_the_mailed_link(stack):
    factories.make_user("alice", team="al-bo")
    client = stack.app.test_client()
    known = client.post("/register", data=form("mallory", "alice@example.org", "345678", "ma-ll"))
    new = client.post("/register", data=form("carol", "carol@example.org", "234567", "ca-ro"))
    assert known.status_code == new.status_code == 200
    assert page_text(known).replace("alice@example.org", "X") == page_text(new).replace("carol@example.org", "X")

    msgs = wait_for(lambda: len(stack.mailbox.messages) >= 2 and stack.mailbox.messages, timeout=30, what="2 mails")
    by_address = {m["X-Envelope-To"]: m for m in msgs}
    assert sorted(by_address) == ["alice@example.org", "carol@example.org"]  # one each
    notice = by_address["alice@example.org"]
    assert notice["Subject"] == "[SRS] Someone tried to register with your address"
    assert "/register/confirm/" not in mail_text(notice) and "/reset-password/" in mail_text(notice)
    confirm = by_address["carol@example.org"]
    assert confirm["Subject"] == "[SRS] Confirm your registration"
    link = re.search(r"(https?://\S+/register/confirm/\S+)", mail_text(confirm)).group(1)
    path = urlsplit(link).path

    assert client.get(path).status_code == 200
    assert accounts.find_user("carol") is None  # fetching the link confirms nothing
    assert client.post(path).status_code == 302
    logged_in(stack.app, "carol", "long-enough-pw")
    assert client.post(path).status_code == 302  # confirming twice is harmless
    assert accounts.find_user("mallory") is None
