"""The demo club's data: the awkward cases it exists to show, and names nobody can mix up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from paylinks.club.due import as_date, club_today
from paylinks.demo.data import DEMO_TENANTS, seed_demo
from paylinks.store.tables import orders, parents, players, products, tenants


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_parent_shares_a_childs_full_name_and_the_awkward_cases_stay(settings, engine):
    seed_demo(engine, settings.club_timezone)
    with engine.connect() as connection:
        people = connection.execute(
            sa.select(
                tenants.c.slug,
                parents.c.id,
                parents.c.first_name,
                parents.c.last_name,
                parents.c.email,
            ).join(tenants, tenants.c.id == parents.c.tenant_id)
        ).all()
        children = connection.execute(
            sa.select(
                tenants.c.slug,
                players.c.parent_id,
                players.c.first_name,
                players.c.last_name,
                players.c.status,
            ).join(tenants, tenants.c.id == players.c.tenant_id)
        ).all()
        order_rows = connection.execute(
            sa.select(
                tenants.c.slug,
                orders.c.player_id,
                orders.c.product_id,
                orders.c.amount_cents,
                orders.c.status,
            ).join(tenants, tenants.c.id == orders.c.tenant_id)
        ).all()

    parent_names = {(p.slug, p.first_name, p.last_name) for p in people}
    child_names = {(c.slug, c.first_name, c.last_name) for c in children}
    assert not parent_names & child_names
    # No parent has a child of the same first name either.
    first_name_of = {p.id: p.first_name for p in people}
    assert not [c for c in children if c.parent_id and first_name_of[c.parent_id] == c.first_name]

    for demo in DEMO_TENANTS:
        own = [c for c in children if c.slug == demo.slug]
        family_sizes = [sum(1 for c in own if c.parent_id == p.id) for p in people if p.slug == demo.slug]
        assert max(family_sizes) == 3  # siblings under one parent
        assert any(p.email is None for p in people if p.slug == demo.slug)  # a parent with no email
        assert any(c.parent_id is None for c in own)  # a player with no parent
        assert {"withdrawn", "registered", "signed"} <= {c.status for c in own}
        mine = [o for o in order_rows if o.slug == demo.slug]
        assert any(o.amount_cents == 0 for o in mine)  # a zero amount, skipped and reported
        assert {"paid", "cancelled", "pending"} <= {o.status for o in mine}
        pending = [(o.player_id, o.product_id) for o in mine if o.status == "pending"]
        assert len(pending) > len(set(pending))  # a duplicate pending order


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])  # UTC+14, UTC-11
def test_the_demo_kit_is_three_days_overdue_by_the_clubs_own_calendar(engine, zone):
    """The demo promises the kit's +3 reminder falls today, whatever the hour. These two zones are
    never on the same day, so a demo that counted from the machine's (UTC) day fails one of them."""
    seed_demo(engine, zone)
    with engine.connect() as connection:
        due_on = (
            connection.execute(sa.select(products.c.due_on).where(products.c.name == "Uniform kit"))
            .scalars()
            .all()
        )
    today = club_today(datetime.now(UTC), ZoneInfo(zone))
    assert {as_date(day, "due_on") for day in due_on} == {today - timedelta(days=3)}
