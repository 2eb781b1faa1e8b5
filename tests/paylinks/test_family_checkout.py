"""The family page's pure parts: the address derived from the secret and a salt, the form's bills,
the checkout's idempotency key and its metadata chunks, the 100-item limit, and the words for a
bill that changed."""

from __future__ import annotations

import hashlib

import pytest

from paylinks.club.tenants import Tenant
from paylinks.family.checkout import (
    METADATA_VALUE_MAX,
    ChosenBill,
    Unchanged,
    check_choice,
    describe_not_offered,
    idempotency_base,
    line_name,
    rows_metadata,
)
from paylinks.family.page import MAX_CHECKOUT_ITEMS, FamilyChild, FamilyItem, FamilyPage, ItemState
from paylinks.family.tokens import TOKEN_LENGTH, derive_token, token_hash

CLUB = Tenant(1, "riverside", "Riverside", "t@r.example", "#123456", None, "usd")


def item(
    row_id: int,
    *,
    version: int = 1,
    amount: int = 2500,
    state: ItemState = ItemState.owed,
    player: str = "Eli Alvarez",
    description: str = "Season dues",
) -> FamilyItem:
    return FamilyItem(
        row_id=row_id,
        player_id=1,
        player_name=player,
        description=description,
        amount_cents=amount,
        state=state,
        mint_version=version,
        url=f"https://buy.stripe.com/{row_id}" if state is ItemState.owed else None,
        stripe_price_id=f"price_{row_id}",
        paid_at=None,
        paid_method=None,
    )


def page_of(*items: FamilyItem) -> FamilyPage:
    return FamilyPage(CLUB, 7, "Dana Alvarez", (FamilyChild(1, "Eli Alvarez", tuple(items)),), 0)


def test_the_token_is_derived_from_the_secret_and_the_salt_and_only_its_hash_is_kept():
    token = derive_token(b"s" * 32, "salt-1")
    assert len(token) == TOKEN_LENGTH and token == derive_token(b"s" * 32, "salt-1")
    assert token != derive_token(b"s" * 32, "salt-2") and token != derive_token(b"t" * 32, "salt-1")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest() and token not in token_hash(token)


@pytest.mark.parametrize("value", ["", "1:2", "1:2:3:4", "a:1:2", "-1:1:2", "1:1:1e3", "1" * 13 + ":1:1"])
def test_a_form_value_that_is_not_a_bill_is_ignored(value):
    assert ChosenBill.parse(value) is None


def test_the_key_is_the_set_of_bills_and_versions_whatever_the_order():
    a, b = item(3, version=2), item(11)
    assert idempotency_base(1, 7, [a, b]) == idempotency_base(1, 7, [b, a])
    assert idempotency_base(1, 7, [a, b]) != idempotency_base(1, 7, [a, item(11, version=2)])
    assert idempotency_base(1, 7, [a]) != idempotency_base(1, 8, [a]) != idempotency_base(2, 7, [a])
    assert len(idempotency_base(2**31 - 1, 2**31 - 1, [a])) + len("-999") <= 200


def test_rows_metadata_is_chunked_at_500_characters_and_names_every_row_once():
    items = [item(1_000_000 + n, version=n % 7 + 1) for n in range(MAX_CHECKOUT_ITEMS)]
    metadata = rows_metadata(items)
    assert (
        list(metadata) == [f"paylinks_rows_{n}" for n in range(1, len(metadata) + 1)] and len(metadata) >= 2
    )
    assert all(len(value) <= METADATA_VALUE_MAX for value in metadata.values())
    pairs = ",".join(metadata.values()).split(",")
    assert sorted(pairs) == sorted(f"{i.row_id}:{i.mint_version}" for i in items)


def test_a_checkout_takes_the_first_100_items_in_the_pages_order():
    items = [item(n) for n in range(1, 131)]
    page = page_of(*items)
    assert page.over_checkout_limit and len(page.payable_together) == MAX_CHECKOUT_ITEMS
    chosen = [ChosenBill(i.row_id, 1, 2500) for i in reversed(items)]
    kept, problems = check_choice(page, chosen)
    assert not problems and [i.row_id for i in kept] == list(range(1, 101))


def test_a_bill_changed_paid_or_gone_is_not_offered_and_says_why():
    page = page_of(
        item(1, version=2, amount=3000), item(2, state=ItemState.paid), item(3, state=ItemState.processing)
    )
    kept, problems = check_choice(
        page, [ChosenBill(1, 1, 2500), ChosenBill(2, 1, 2500), ChosenBill(3, 1, 2500), ChosenBill(4, 1, 2500)]
    )
    assert kept == []
    assert [p.reason for p in problems] == [
        Unchanged.changed,
        Unchanged.paid,
        Unchanged.processing,
        Unchanged.gone,
    ]
    assert describe_not_offered(problems[0], "usd") == (
        "Season dues for Eli Alvarez changed since the page was opened (now $30.00)."
    )
    assert describe_not_offered(problems[3], "usd") == "An item is no longer owed."


def test_each_line_names_the_bill_and_the_child_on_one_line():
    assert line_name(item(1)) == "Season dues — Eli Alvarez"
    hostile = line_name(item(1, player="Eli\nAlvarez", description="Dues\r\n" + "x" * 400))
    assert "\n" not in hostile and "\r" not in hostile and len(hostile) <= 250
