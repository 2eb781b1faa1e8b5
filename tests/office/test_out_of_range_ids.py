"""An id no row can have (beyond the databases' integer range, zero, negative, not a number) in a
page's path or query answers 404 "nothing here", never 500, for pages and forms alike."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from paylinks.store.tables import players
from tests.office.conftest import TENANT

# Storage semantics matter here (PostgreSQL's integer range refuses ids SQLite accepts): PostgreSQL too.
pytestmark = pytest.mark.storage

HUGE_IDS = [
    str(2**31),  # just past PostgreSQL's integer
    str(2**63),  # just past SQLite's
    "99999999999999999999999",
    "9" * 500,
]


def a_player_id(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(players.c.id).order_by(players.c.id)).scalar()


def test_huge_ids_in_a_pages_path_or_query_answer_404(engine, admin):
    player = a_player_id(engine)
    for huge in HUGE_IDS:
        for path in (
            f"/t/{TENANT}/players/{huge}",
            f"/t/{TENANT}/players/{player}?done={huge}",
            f"/t/{TENANT}/admin?done={huge}",
            f"/preview/payment-links/{huge}",
            f"/t/{TENANT}/runs/{huge}",
        ):
            answer = admin.get(path)
            assert answer.status_code == 404, (path, answer.status_code)
            assert "There is nothing here" in answer.text


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("/t/{slug}/players/{id}/resend", {}),
        ("/t/{slug}/refunds/{id}/resolve", {"resolution": "kept as credit"}),
        ("/t/{slug}/rows/{id}/paid-offline", {"method": "cash"}),
    ],
)
def test_huge_ids_in_a_forms_action_answer_404(engine, admin, action, data):
    for huge in HUGE_IDS:
        answer = admin.submit(f"/t/{TENANT}/admin", action.format(slug=TENANT, id=huge), data)
        assert answer.status_code == 404, (action, huge, answer.status_code)
        assert "There is nothing here" in answer.text


def test_ids_that_are_not_positive_numbers_answer_404(engine, admin):
    for bad in ("0", "-1", "abc", "1.5", "1e3"):
        assert admin.get(f"/t/{TENANT}/players/{bad}").status_code == 404, bad
        assert admin.get(f"/preview/payment-links/{bad}").status_code == 404, bad
