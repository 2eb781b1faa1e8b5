"""What the Prefect UI shows of a run's report: the club's own names as text. A player named like an
HTML script, or a parent named like a markdown link, appears in the run's artifacts as typed, never as
markup the UI would render (a script tag, a link to somewhere else, bold, a broken table)."""

from __future__ import annotations

import asyncio
import re

import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.backfill_payment_links import backfill_payment_links
from flows.outstanding_balance_email import outstanding_balance_email
from paylinks.store.tables import parents, players
from tests.helpers import TENANT

SCRIPT = "<script>alert(1)</script>"
LINK = "[click](https://evil.example)"
PIPE_AND_STARS = "**Ann** | Lee_x `y`"


def _rename_first_family(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        player = (
            connection.execute(
                sa.text(
                    "SELECT p.id, p.parent_id FROM players p JOIN tenants t ON t.id = p.tenant_id "
                    "WHERE t.slug = :slug AND p.parent_id IS NOT NULL ORDER BY p.id LIMIT 1"
                ),
                {"slug": TENANT},
            )
            .mappings()
            .one()
        )
        connection.execute(sa.update(players).where(players.c.id == player["id"]).values(first_name=SCRIPT))
        connection.execute(
            sa.update(parents)
            .where(parents.c.id == player["parent_id"])
            .values(first_name=LINK, last_name=PIPE_AND_STARS)
        )


def _artifacts_of(flow_run_id) -> list[str]:
    """Every artifact of the run as the UI receives it: key, description and data."""

    async def read() -> list[str]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
            return [f"{a.key}\n{a.description or ''}\n{a.data}" for a in artifacts]

    return asyncio.run(read())


def test_names_that_look_like_markup_are_text_in_every_artifact(settings, engine, demo_club):
    _rename_first_family(engine)
    backfill = backfill_payment_links(tenant=TENANT, commit=True, return_state=True)
    blast = outstanding_balance_email(tenant=TENANT, return_state=True)
    assert backfill.is_completed() and blast.is_completed()

    stored = _artifacts_of(backfill.state_details.flow_run_id) + _artifacts_of(
        blast.state_details.flow_run_id
    )
    details = [a for a in stored if a.split("\n", 1)[0].endswith("-details")]
    assert len(details) == 2, [a.split("\n", 1)[0] for a in stored]
    everything = "\n".join(stored)
    # The names are there (the player in the backfill's steps, the parent among the blast's recipients) ...
    assert "alert(1)" in everything and "evil.example" in everything
    # ... but never as markup: no tag, no link, no emphasis, no extra table column.
    assert "<script" not in everything.lower()
    assert not re.search(r"\]\(https?://evil", everything)
    assert "**Ann**" not in everything
    assert "Lee_x `y`" not in everything  # underscores and backticks are escaped too
