"""The login throttle holds under parallel guessing, and a stranger's guesses do not lock the
real person out: the real office over HTTP, on both databases (the count is a storage race)."""

from __future__ import annotations

import threading

import pytest

from tests.office.conftest import ADMIN, PASSWORD, csrf_of

# Both tests are marked `storage` and run on PostgreSQL too: attempts counted atomically under
# concurrent logins.

GUESSES = 20
LIMIT = 5  # the default attempts per account and address


def _guess_all_at_once(office, count: int, headers: dict[str, str] | None = None) -> list[int]:
    """`count` browsers, each with its login form open, post a wrong password at the same moment."""
    clients = [office.client() for _ in range(count)]
    tokens = [csrf_of(client.get("/login", headers=headers).text) for client in clients]
    start = threading.Barrier(count)
    codes: list[int] = [0] * count

    def guess(index: int) -> None:
        start.wait()
        response = clients[index].post(
            "/login",
            data={"email": ADMIN, "password": "not the password!", "csrf_token": tokens[index]},
            headers=headers,
        )
        codes[index] = response.status_code

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for client in clients:
        client.close()
    return codes


@pytest.mark.storage  # parallel attempts counted by one upsert each
def test_parallel_wrong_passwords_are_counted_before_any_is_checked(office):
    codes = _guess_all_at_once(office, GUESSES)
    assert sorted(set(codes)) == [401, 429]
    assert codes.count(401) <= LIMIT, f"{codes.count(401)} guesses were checked, the limit is {LIMIT}"
    assert codes.count(429) >= GUESSES - LIMIT


@pytest.mark.storage  # parallel attempts counted per account and address (upsert)
def test_a_strangers_guesses_do_not_lock_the_real_person_out(office, use_settings):
    from office.server import OfficeServer
    from tests.helpers import current_settings

    use_settings(office_behind_proxy=True)
    with OfficeServer(current_settings()) as server:
        office.url = server.url
        stranger = {"x-forwarded-for": "203.0.113.9"}
        codes = _guess_all_at_once(office, LIMIT + 2, headers=stranger)
        assert codes.count(429) >= 2
        with office.client() as real:
            form = real.get("/login", headers={"x-forwarded-for": "198.51.100.7"})
            signed_in = real.post(
                "/login",
                data={"email": ADMIN, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
                headers={"x-forwarded-for": "198.51.100.7"},
            )
        assert signed_in.status_code == 303, "the real admin, from their own address, is let in"
        with office.client() as again:
            form = again.get("/login", headers=stranger)
            refused = again.post(
                "/login",
                data={"email": ADMIN, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
                headers=stranger,
            )
        assert refused.status_code == 429, "the guessing address stays throttled, even with the password"
