"""What a blast and a coach's resend did, as typed reports: who was reached, skipped and failed,
and the rules that read them (a skip from a claim, whether the blast is finished).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from paylinks.club.balances import HeldBackItem
from paylinks.club.players import PlayerMatch
from paylinks.messaging.blasts import BlastRun
from paylinks.messaging.claims import LastBlast, RecentEmail, SendOutcome, SendResult
from paylinks.messaging.prepare import PreparedEmail, SkipReason
from paylinks.settings import EmailTransportName
from paylinks.vocabulary import StrLabelEnum


class BlastMode(enum.StrEnum):
    preview = "preview"  # render everything, send nothing
    test = "test"  # one sample to a test address, its buttons not payable
    send = "send"  # every parent with a balance


class ResendOutcome(StrLabelEnum):
    sent = "sent", "sent"
    dry_run = "dry_run", "dry run"
    unreachable = "unreachable", "unreachable: no email on file"
    failed = "failed", "failed"


# A claim that found the send done or under way, or another blast's email: skipped, not sent.
_SKIPPED_BY_RESULT = {
    SendResult.already_sent: SkipReason.already_sent,
    SendResult.claimed_elsewhere: SkipReason.claimed_elsewhere,
    SendResult.held_back: SkipReason.recently_emailed,
}


@dataclass
class BlastReport:
    """Who a blast (or its preview, or its test send) reached, skipped and failed."""

    tenant: str
    mode: BlastMode
    currency: str
    transport: EmailTransportName
    blast: BlastRun | None  # for a preview: the blast a send would resume (None: a new one)
    emails: list[PreparedEmail]
    held_back: tuple[HeldBackItem, ...] = ()
    sent: list[SendOutcome] = field(default_factory=list)
    skipped: dict[int, SkipReason] = field(default_factory=dict)  # parent id → why no email
    failed: list[SendOutcome] = field(default_factory=list)
    outbox_dir: str | None = None  # set when the transport is the outbox folder
    test_recipient: str | None = None
    sample: PreparedEmail | None = None  # the test send's email (its buttons lead to previews)
    timezone: str = "UTC"  # the club's zone (IANA name): times in the report are shown in it
    last_blast: LastBlast | None = None  # the latest blast that reached anyone, before this run
    hold_hours: int = 0  # parents another blast emailed this many hours ago or less are held back
    include_recent: bool = False  # the admin asked to mail them anyway
    recently_emailed: dict[int, RecentEmail] = field(
        default_factory=dict
    )  # parent id → another blast's email
    # Parents who opted out of reminders: still mailed by a blast (opting out is of reminders only).
    opted_out: frozenset[int] = frozenset()

    @property
    def run_key(self) -> str | None:
        return self.blast.run_key if self.blast else None

    @property
    def total_cents(self) -> int:
        return sum(email.total_cents for email in self.emails)

    @property
    def item_count(self) -> int:
        return sum(email.item_count for email in self.emails)

    def skipped_for(self, reason: SkipReason) -> int:
        return sum(1 for why in self.skipped.values() if why is reason)

    @property
    def claims_taken_over(self) -> list[SendOutcome]:
        return [outcome for outcome in self.sent if outcome.took_over_claim_of is not None]

    def add_send(self, parent_id: int, outcome: SendOutcome) -> None:
        """A parent's completed send: sent, or skipped when its claim found it sent or being sent."""
        if outcome.result in _SKIPPED_BY_RESULT:
            self.skipped[parent_id] = _SKIPPED_BY_RESULT[outcome.result]
            if outcome.emailed is not None:
                self.recently_emailed[parent_id] = outcome.emailed
        else:
            self.sent.append(outcome)

    @property
    def held_back_parents(self) -> list[PreparedEmail]:
        """Parents with a balance held back (or, in a preview, a send would hold back) because
        another blast emailed them recently."""
        if self.mode is BlastMode.send:
            return [e for e in self.emails if self.skipped.get(e.parent_id) is SkipReason.recently_emailed]
        return [e for e in self.emails if e.parent_id in self.recently_emailed and e.address]

    @property
    def sends_nothing_because_recent(self) -> bool:
        """A send that mailed nobody because every parent it could reach was emailed recently."""
        return (
            self.mode is BlastMode.send and not self.sent and not self.failed and bool(self.held_back_parents)
        )

    @property
    def reached_everyone(self) -> bool:
        """Nothing failed and no other run is still sending: the blast can be marked finished."""
        return not self.failed and self.skipped_for(SkipReason.claimed_elsewhere) == 0


@dataclass(frozen=True)
class ResendToParent:
    """One parent's email in a coach's resend, and what became of it."""

    parent_id: int
    parent_name: str
    recipient: str | None
    email: PreparedEmail
    outcome: ResendOutcome
    error: str | None = None


@dataclass
class ResendReport:
    """What the coach's resend found and did: one email per parent who owes something for the player."""

    tenant: str
    currency: str
    player: PlayerMatch
    to: str | None  # the address every email went to instead of each parent's
    dry_run: bool
    parents: list[ResendToParent] = field(default_factory=list)
    held_back: tuple[HeldBackItem, ...] = ()

    @property
    def nothing_owed(self) -> bool:
        return not self.parents

    def count(self, outcome: ResendOutcome) -> int:
        return sum(1 for parent in self.parents if parent.outcome is outcome)
