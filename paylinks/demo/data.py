"""The demo club: two tenants with the awkward cases real club data has.

Siblings under one parent, pending orders at custom amounts (which need new price tiers), a
withdrawn player, a parent with no email, a player with no parent, a product only some players
owe through orders, a duplicate pending order and an order with a zero amount. Parents and
children are named from separate lists, so nobody's full name is both a parent's and a child's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.club.due import club_today
from paylinks.store.tables import orders, parents, players, products, tenants

FIRST_NAMES = [
    "Maya",
    "Liam",
    "Ava",
    "Noah",
    "Zoe",
    "Eli",
    "Nora",
    "Leo",
    "Ivy",
    "Owen",
    "Ruby",
    "Kai",
    "Lena",
    "Miles",
    "Aria",
    "Jude",
    "Elsa",
    "Theo",
    "Cora",
    "Finn",
    "Iris",
    "Ezra",
    "June",
    "Milo",
]
# Parents' first names come from a list of their own, so no parent shares a child's full name
# (a parent "Maya Alvarez" with a daughter "Maya Alvarez" would confuse everyone reading the demo).
PARENT_FIRST_NAMES = [
    "Dana",
    "Marcus",
    "Priya",
    "Tomas",
    "Grace",
    "Victor",
    "Helen",
    "Samir",
    "Rosa",
    "Daniel",
    "Claire",
    "Omar",
    "Beth",
    "Andre",
    "Nadia",
    "Paul",
    "Ingrid",
    "Carlos",
    "Wendy",
    "Hassan",
    "Laura",
    "Felix",
    "Monica",
    "Gavin",
]
LAST_NAMES = [
    "Alvarez",
    "Brooks",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Mensah",
    "Novak",
    "Okafor",
    "Patel",
]


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    reply_to_email: str
    brand_color: str
    logo_url: str | None
    families: int  # parents; some have two or three children
    teams: tuple[str, ...]


DEMO_TENANTS = (
    DemoTenant(
        "riverside-hoops",
        "Riverside Hoops Club",
        "treasurer@riversidehoops.example",
        "#c0392b",
        None,
        12,
        ("U10 Red", "U12 Red", "U14 Red"),
    ),
    DemoTenant(
        "northside-eagles",
        "Northside Eagles Basketball",
        "billing@northsideeagles.example",
        "#1f6feb",
        "https://northsideeagles.example/logo.png",
        9,
        ("U11 Blue", "U13 Blue"),
    ),
)


# `paylinks demo` pays this club into its own Stripe (Connect) account at its emulator; the
# seeded data itself names no account (every club starts on the platform's).
DEMO_CONNECTED_TENANT = "northside-eagles"
DEMO_CONNECTED_ACCOUNT = "acct_demoNorthsideEagles"


@dataclass
class SeedReport:
    tenants: list[str]
    skipped_tenants: list[str]
    players: int = 0
    parents: int = 0
    orders: int = 0


def seed_demo(engine: Engine, club_timezone: str) -> SeedReport:
    """Load the demo tenants; a tenant whose slug already exists is left as it is.

    The demo's clubs name no time zone of their own, so they keep `club_timezone` (the settings'):
    their due dates count from that zone's today, not the machine's, which in the evening in
    America/New_York is already tomorrow by UTC."""
    today = demo_today(club_timezone)
    report = SeedReport(tenants=[], skipped_tenants=[])
    with engine.begin() as connection:
        existing = set(connection.execute(sa.select(tenants.c.slug)).scalars())
        for offset, demo in enumerate(DEMO_TENANTS):
            if demo.slug in existing:
                report.skipped_tenants.append(demo.slug)
                continue
            _seed_tenant(connection, demo, offset, report, today)
            report.tenants.append(demo.slug)
    return report


def demo_today(club_timezone: str) -> date:
    """Today in `club_timezone`: the day the demo's due dates count from."""
    return club_today(datetime.now(UTC), ZoneInfo(club_timezone))


def _seed_tenant(
    connection: sa.Connection, demo: DemoTenant, offset: int, report: SeedReport, today: date
) -> None:
    tenant_id = connection.execute(
        sa.insert(tenants)
        .values(
            slug=demo.slug,
            name=demo.name,
            reply_to_email=demo.reply_to_email,
            brand_color=demo.brand_color,
            logo_url=demo.logo_url,
            currency="usd",
            # The demo's clubs remind on their own (the default cadence and hours).
            reminders_enabled=True,
        )
        .returning(tenants.c.id)
    ).scalar_one()

    def add_product(
        name: str,
        description: str,
        amount_cents: int,
        billed: bool,
        active: bool = True,
        due_in_days: int | None = None,
    ) -> int:
        return connection.execute(
            sa.insert(products)
            .values(
                tenant_id=tenant_id,
                name=name,
                description=description,
                amount_cents=amount_cents,
                active=active,
                bill_signed_players=billed,
                due_on=None if due_in_days is None else today + timedelta(days=due_in_days),
            )
            .returning(products.c.id)
        ).scalar_one()

    # Due dates relative to the day the demo is seeded: the dues in ten days, the kit three days
    # overdue (its +3 reminder falls today); the orders are due 14 days after they are raised.
    dues = add_product(
        "Season dues",
        "Fall/winter season: coaching, gym time, league fees",
        25000 + 2500 * offset,
        True,
        due_in_days=10,
    )
    uniform = add_product("Uniform kit", "Home and away jerseys, shorts", 6500, True, due_in_days=-3)
    tournament = add_product("Spring tournament", "Entry fee for the spring invitational", 4500, False)
    add_product("Summer camp 2025", "Last year's camp (no longer billed)", 18000, True, active=False)

    player_ids: list[int] = []
    parent_ids: list[int] = []
    for family in range(demo.families):
        last = LAST_NAMES[(family + offset * 5) % len(LAST_NAMES)]
        first = PARENT_FIRST_NAMES[(family * 7 + offset) % len(PARENT_FIRST_NAMES)]
        email = None if family == 3 else f"{first.lower()}.{last.lower()}@families.example"
        parent_id = connection.execute(
            sa.insert(parents)
            .values(
                tenant_id=tenant_id,
                first_name=first,
                last_name=last,
                email=email,
            )
            .returning(parents.c.id)
        ).scalar_one()
        parent_ids.append(parent_id)
        report.parents += 1
        children = 3 if family % 5 == 0 else 2 if family % 3 == 0 else 1
        for child in range(children):
            index = len(player_ids)
            status = (
                "withdrawn"
                if (family, child) == (4, 0)
                else "registered"
                if (family, child) == (7, 0)
                else "signed"
            )
            player_ids.append(
                connection.execute(
                    sa.insert(players)
                    .values(
                        tenant_id=tenant_id,
                        parent_id=parent_id,
                        first_name=FIRST_NAMES[(index * 5 + family + offset) % 24],
                        last_name=last,
                        team=demo.teams[index % len(demo.teams)],
                        status=status,
                    )
                    .returning(players.c.id)
                ).scalar_one()
            )
            report.players += 1
    orphan = connection.execute(
        sa.insert(players)
        .values(
            tenant_id=tenant_id,
            parent_id=None,
            first_name="Sam",
            last_name="Unassigned",
            team=demo.teams[0],
            status="signed",
        )
        .returning(players.c.id)
    ).scalar_one()
    report.players += 1

    def add_order(player_index: int, product_id: int, amount_cents: int, status: str = "pending") -> None:
        player_id = player_ids[player_index]
        parent_id = connection.execute(
            sa.select(players.c.parent_id).where(players.c.id == player_id)
        ).scalar_one()
        connection.execute(
            sa.insert(orders).values(
                tenant_id=tenant_id,
                player_id=player_id,
                parent_id=parent_id,
                product_id=product_id,
                amount_cents=amount_cents,
                status=status,
            )
        )
        report.orders += 1

    # Only some players owe the tournament, through orders; siblings get a discount.
    add_order(0, tournament, 4500)
    add_order(1, tournament, 3750)
    add_order(2, tournament, 3750)
    add_order(5, tournament, 4500)
    add_order(5, tournament, 4500)  # duplicate pending order: billed once, reported
    add_order(8, dues, 20000 - 1000 * offset)  # scholarship: a custom amount, a new price tier
    add_order(9, uniform, 0)  # zero amount: skipped, reported
    add_order(10, tournament, 4500, status="paid")
    add_order(11, tournament, 4500, status="cancelled")
    add_order(_first_registered(connection, player_ids), tournament, 5200)  # registered, not signed
    connection.execute(
        sa.insert(orders).values(
            tenant_id=tenant_id,
            player_id=orphan,
            parent_id=None,
            product_id=tournament,
            amount_cents=4500,
            status="pending",
        )
    )
    report.orders += 1


def _first_registered(connection: sa.Connection, player_ids: list[int]) -> int:
    for index, player_id in enumerate(player_ids):
        status = connection.execute(sa.select(players.c.status).where(players.c.id == player_id)).scalar_one()
        if status == "registered":
            return index
    return 0
