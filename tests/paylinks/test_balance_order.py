"""The order parents and their items are listed in (previews, emails, the blast's recipients):
by name as people read them, whatever the database's collation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from paylinks.club.balances import name_key, outstanding_balances
from paylinks.store.tables import parents
from paylinks.stripe_api.gateway import StripeGateway
from tests.helpers import TENANT


def test_names_sort_without_case_or_accents():
    assert sorted(["Zimmer", "de Vries", "Évans", "Davis", "eaton"], key=name_key) == [
        "Davis",
        "de Vries",
        "eaton",
        "Évans",
        "Zimmer",
    ]
    assert name_key(None) == name_key("") == ""


@pytest.mark.storage  # the rows come unordered from the database: the same order on both
def test_parents_are_listed_by_last_then_first_name_as_people_read_them(settings, engine, minted_club):
    tenant = next(t for t in minted_club if t.slug == TENANT)
    context = StripeGateway(settings).context()
    with engine.connect() as connection:
        owing = [b.parent_id for b in outstanding_balances(connection, tenant, context).balances]
    renamed = dict(zip(owing[:5], ["Zimmer", "de Vries", "Évans", "Davis", "eaton"], strict=True))
    with engine.begin() as connection:
        for parent_id, last_name in renamed.items():
            connection.execute(
                sa.update(parents).where(parents.c.id == parent_id).values(last_name=last_name)
            )

    with engine.connect() as connection:
        listed = [b.parent_id for b in outstanding_balances(connection, tenant, context).balances]

    assert [renamed[p] for p in listed if p in renamed] == ["Davis", "de Vries", "eaton", "Évans", "Zimmer"]
    assert sorted(listed) == sorted(owing)  # everyone still listed, once
