"""The backfill flow against the demo club, the emulator over HTTP, and SQLite/PostgreSQL."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from flows.backfill_payment_links import backfill_payment_links
from paylinks.billing.plan import Action, SkipReason
from paylinks.present.backfill import backfill_tables
from paylinks.store.tables import payment_links, price_tiers, products
from tests.helpers import TENANT

TABLES = ("payment_links", "price_tiers", "products", "orders", "players", "email_log")


def table_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        counts = {t: connection.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}
        counts["products with stripe id"] = connection.execute(
            sa.select(sa.func.count()).where(products.c.stripe_product_id.is_not(None))
        ).scalar_one()
    return counts


def link_rows(engine: sa.Engine) -> list[sa.RowMapping]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(payment_links).order_by(payment_links.c.id)).mappings())


def test_dry_run_lists_every_item_and_changes_nothing(settings, engine, emulator, demo_club):
    before = (table_counts(engine), emulator.emulator.counts())

    reports = backfill_payment_links(tenant=None, commit=False)

    assert (table_counts(engine), emulator.emulator.counts()) == before
    by_tenant = {report.tenant: report for report in reports}
    assert set(by_tenant) == {t.slug for t in demo_club}
    hoops = by_tenant["riverside-hoops"]
    with engine.connect() as connection:
        signed_with_parent = (
            connection.execute(
                sa.text(
                    "SELECT p.id FROM players p JOIN tenants t ON t.id = p.tenant_id "
                    "WHERE t.slug = 'riverside-hoops' AND p.status = 'signed' AND p.parent_id IS NOT NULL"
                )
            )
            .scalars()
            .all()
        )
    steps = hoops.plan.steps
    assert all(step.action is Action.reserve_and_mint for step in steps)
    dues_players = {s.item.player_id for s in steps if s.item.description == "Season dues"}
    assert dues_players == set(signed_with_parent)
    # The scholarship order's custom amount is billed, and needs a new price tier.
    scholarship = [s.item for s in steps if s.item.description == "Season dues" and s.item.order_id]
    assert len(scholarship) == 1 and scholarship[0].amount_cents == 20000
    assert any(amount == 20000 for _, amount in hoops.plan.tiers_needed)
    reasons = {(s.reason, s.detail) for s in hoops.plan.skipped}
    assert (SkipReason.no_parent, "Sam Unassigned") in reasons
    assert SkipReason.duplicate_pending_order in {reason for reason, _ in reasons}
    assert SkipReason.non_positive_order_amount in {reason for reason, _ in reasons}
    assert len(hoops.plan.to_mint) == len(hoops.plan.items)
    # What a person reads: the dry run's table names each step and each skip in words.
    summary, steps_table, skipped_table, _ = backfill_tables(hoops)
    assert ("links to mint", str(len(hoops.plan.items))) in summary.rows
    assert {row[0] for row in steps_table.rows} == {"reserve and mint"}
    assert any("no parent on file (Sam Unassigned)" in row[3] for row in skipped_table.rows)


def test_commit_mints_one_link_per_item_then_nothing_more(
    settings, engine, emulator, demo_club, stripe_client
):
    planned = sum(len(r.plan.items) for r in backfill_payment_links(commit=False))

    reports = backfill_payment_links(commit=True)

    rows = link_rows(engine)
    links = {
        link.id: link
        for link in stripe_client.v1.payment_links.list(params={"limit": 100}).auto_paging_iter()
    }
    assert len(rows) == len(links) == planned == sum(r.loaded for r in reports)
    assert {row["stripe_payment_link_id"] for row in rows} == set(links)
    for row in rows:
        link = links[row["stripe_payment_link_id"]]
        assert link.url == row["stripe_payment_link_url"]
        assert link.metadata["payment_link_row_id"] == str(row["id"])
        assert link.payment_intent_data.metadata["payment_link_row_id"] == str(row["id"])
        assert link.restrictions.completed_sessions.limit == 1
        (line_item,) = stripe_client.v1.payment_links.line_items.list(link.id).data
        assert line_item.price.unit_amount == row["amount_cents"]
        assert link.metadata.to_dict().get("order_id") == (str(row["order_id"]) if row["order_id"] else None)

    objects_after_first = emulator.emulator.counts()
    counts_after_first = table_counts(engine)
    second = backfill_payment_links(commit=True)
    assert emulator.emulator.counts() == objects_after_first
    assert table_counts(engine) == counts_after_first
    assert all(r.loaded == 0 and r.plan.counts()[Action.up_to_date] == len(r.plan.items) for r in second)


def test_price_tiers_one_per_product_and_amount(settings, engine, emulator, demo_club, stripe_client):
    backfill_payment_links(commit=True)
    with engine.connect() as connection:
        tiers = connection.execute(sa.select(price_tiers)).mappings().all()
        amounts_in_use = {
            tuple(row)
            for row in connection.execute(sa.select(payment_links.c.product_id, payment_links.c.amount_cents))
        }
    assert {(t["product_id"], t["amount_cents"]) for t in tiers} == amounts_in_use
    for tier in tiers:
        price = stripe_client.v1.prices.retrieve(tier["stripe_price_id"])
        assert price.unit_amount == tier["amount_cents"]
    assert emulator.emulator.counts()["prices"] == len(tiers)


def test_flaky_rate_limited_stripe_still_ends_with_the_same_counts(
    settings, engine, emulator, demo_club, stripe_client, monkeypatch
):
    planned = sum(len(r.plan.items) for r in backfill_payment_links(commit=False))
    emulator.emulator.faults.fail_rate = 0.2
    emulator.emulator.faults.rate_limit_rps = 40

    backfill_payment_links(commit=True)

    emulator.emulator.faults.fail_rate = 0.0
    emulator.emulator.faults.rate_limit_rps = None
    rows = link_rows(engine)
    links = list(stripe_client.v1.payment_links.list(params={"limit": 100}).auto_paging_iter())
    assert len(rows) == len(links) == planned
    assert {row["stripe_payment_link_id"] for row in rows} == {link.id for link in links}


def test_every_task_run_is_recorded_and_the_summary_artifact_exists(settings, demo_club):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )

    state = backfill_payment_links(tenant="riverside-hoops", commit=True, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    report = state.result()[0]
    batches = -(-len(report.plan.to_mint) // settings.stripe_mint_batch_size)
    # check, find tenants, find the Stripe account, extract, plan, tiers, retire, reserve,
    # (mint + load) per batch, summary
    expected = 8 + 2 * batches + 1

    async def recorded() -> tuple[int, list[str]]:
        async with get_client() as client:
            for _ in range(50):
                task_runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
                )
                if len(task_runs) >= expected:
                    break
                await asyncio.sleep(0.2)
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
            return len(task_runs), [a.key for a in artifacts]

    count, keys = asyncio.run(recorded())
    assert count == expected
    assert "backfill-riverside-hoops-summary" in keys


def test_a_batch_that_breaks_stops_the_minting_and_every_link_minted_is_stored(
    settings, use_settings, engine, emulator, demo_club, stripe_client, monkeypatch
):
    """Two batches mint at once; when one breaks (not a Stripe refusal: the worker itself), no
    new batch starts, the other's links are still stored, and the next run mints the rest once."""
    from paylinks.billing import mint

    use_settings(stripe_mint_batch_size=3)
    real = mint.mint_payment_links
    started: list[int] = []

    def the_second_batch_breaks(gateway, jobs, concurrency):
        started.append(len(jobs))
        if len(started) == 2:
            raise RuntimeError("the worker lost its network")
        return real(gateway, jobs, concurrency)

    monkeypatch.setattr(mint, "mint_payment_links", the_second_batch_breaks)
    state = backfill_payment_links(tenant=TENANT, commit=True, return_state=True)

    assert state.is_failed(), "an incomplete backfill is a failed run"
    (report,) = state.result(raise_on_failure=False).reports
    assert report.aborted is not None and "failed" in report.aborted and "lost its network" in report.aborted
    rows = link_rows(engine)
    links = {
        link.id for link in stripe_client.v1.payment_links.list(params={"limit": 100}).auto_paging_iter()
    }
    stored = {row["stripe_payment_link_id"] for row in rows if row["stripe_payment_link_id"]}
    assert stored == links, "every link minted is on its row"
    # Every batch that started, but the broken one, is stored (one more was under way at most).
    assert len(links) == report.loaded == 3 * (len(started) - 1) and len(started) <= 3
    assert len(rows) > len(links), "the rest waits for the next run"

    monkeypatch.setattr(mint, "mint_payment_links", real)
    backfill_payment_links(tenant=TENANT, commit=True)

    rows = link_rows(engine)
    links = {
        link.id for link in stripe_client.v1.payment_links.list(params={"limit": 100}).auto_paging_iter()
    }
    assert all(row["stripe_payment_link_id"] for row in rows)
    assert {row["stripe_payment_link_id"] for row in rows} == links and len(links) == len(rows)
