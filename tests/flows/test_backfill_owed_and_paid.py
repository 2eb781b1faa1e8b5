"""The backfill's summary, as a treasurer reads it: what is still owed apart from what was already
paid, in money, in the CLI's table and in the run's summary artifact alike."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import sqlalchemy as sa

from flows.backfill_payment_links import backfill_payment_links
from flows.reconcile_payments import reconcile_payments
from paylinks.money import format_money
from paylinks.present.backfill import backfill_tables
from paylinks.store.tables import payment_links, tenants
from tests.helpers import TENANT


def pending_rows(engine: sa.Engine) -> list[sa.RowMapping]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(payment_links)
                .join(tenants, tenants.c.id == payment_links.c.tenant_id)
                .where(tenants.c.slug == TENANT, payment_links.c.status == "pending")
                .order_by(payment_links.c.id)
            ).mappings()
        )


def summary_artifact(flow_run_id) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    async def read() -> dict[str, str]:
        async with get_client() as client:
            (artifact,) = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                    key=ArtifactFilterKey(any_=[f"backfill-{TENANT}-summary"]),
                )
            )
            rows = artifact.data if isinstance(artifact.data, list) else json.loads(artifact.data)
            return {row["figure"]: row["value"] for row in rows}

    return asyncio.run(read())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_summary_says_what_is_owed_now_apart_from_what_was_already_paid(settings, engine, minted_club):
    rows = pending_rows(engine)
    billed = sum(row["amount_cents"] for row in rows)
    # Two parents pay a season's fee through their links (default fees: they stay billed).
    paid = [row for row in rows if row["order_id"] is None][:2]
    for row in paid:
        answer = httpx.post(row["stripe_payment_link_url"], headers={"Accept": "application/json"})
        assert answer.status_code == 200, answer.text
    reconcile_payments(tenant=TENANT)
    paid_cents = sum(row["amount_cents"] for row in paid)

    state = backfill_payment_links(tenant=TENANT, commit=False, return_state=True)
    (report,) = state.result()

    owed_now = f"{format_money(billed - paid_cents)} for {len(rows) - 2} items"
    already_paid = f"{format_money(paid_cents)} for 2 items"
    summary = dict(backfill_tables(report)[0].rows)
    assert summary["owed now"] == owed_now
    assert summary["already paid"] == already_paid
    assert "items owed" not in summary and "amount owed" not in summary
    published = summary_artifact(state.state_details.flow_run_id)
    assert published["owed now"] == owed_now and published["already paid"] == already_paid


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_before_anyone_pays_nothing_is_already_paid(settings, engine, demo_club):
    (report,) = backfill_payment_links(tenant=TENANT, commit=False)
    summary = dict(backfill_tables(report)[0].rows)
    billed = sum(item.amount_cents for item in report.plan.items)
    assert summary["owed now"] == f"{format_money(billed)} for {len(report.plan.items)} items"
    assert summary["already paid"] == "nothing yet"
