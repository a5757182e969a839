"""Password reset end to end: the link travels through the worker's mail task to a real SMTP server."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests import factories
from tests.integration.conftest import wait_for
from tests.integration.helpers import logged_in, mail_text

pytestmark = pytest.mark.integration


def reset_path(message) -> str:
    link = re.search(r"(https?://\S+/reset-password/\S+)", mail_text(message)).group(1)
    return urlsplit(link).path


def test_forgotten_password_is_reset_through_the_mailed_link(stack):
    factories.make_user("alice", team="al-bo")
    client = stack.app.test_client()
    response = client.post("/forgot-password", data={"email": "alice@example.org"})
    assert response.status_code == 302
    msgs = wait_for(lambda: stack.mailbox.messages, timeout=30, what="the reset mail")
    assert msgs[0]["X-Envelope-To"] == "alice@example.org"
    assert msgs[0]["Subject"] == "[SRS] Reset your password"
    path = reset_path(msgs[0])
    assert client.get(path).status_code == 200
    assert client.post(path, data={"password": "brand-new-pw", "password2": "brand-new-pw"}).status_code == 302
    logged_in(stack.app, "alice", "brand-new-pw")
    assert client.get(path).status_code == 400  # single use


def test_unknown_address_sends_no_mail_and_staff_resets_reach_the_student(stack):
    factories.make_user("admin", admin=True)
    student = factories.make_user("bob", team="al-bo")
    client = stack.app.test_client()
    assert client.post("/forgot-password", data={"email": "nobody@example.org"}).status_code == 302
    staff = logged_in(stack.app, "admin")
    assert staff.post(f"/admin/users/{student.id}/reset-password").status_code == 302
    msgs = wait_for(lambda: stack.mailbox.messages, timeout=30, what="the staff reset mail")
    assert [m["X-Envelope-To"] for m in msgs] == ["bob@example.org"]  # the unknown address got nothing
    assert "course staff asked" in mail_text(msgs[0])
    assert client.get(reset_path(msgs[0])).status_code == 200
