"""What the outbox folder costs per email as it fills, and what another process's first send costs.

The outbox (the embedded default transport) writes each message's `.eml`, its HTML beside it and
`index.html` (the newest emails, older ones on numbered pages). A blast writes thousands, so a send
must cost the same in a full outbox as in an empty one. This benchmark renders N emails, sends
them into a fresh outbox through one transport, timing the first and the last tenth apart, then
sends one more through a new transport (as the office or a second run would, reading the folder).

It prints milliseconds per email early and late and their ratio (about 1 when nothing grows with
the outbox), and the new transport's first send.

Usage: .venv/bin/python benchmarks/outbox.py [--emails 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from paylinks.messaging.render import Brand, OpenItem, ParentBalance, build_message, render_email
from paylinks.messaging.transports import OutboxTransport

BRAND = Brand("Riverside FC", "treasurer@riverside.example", "#0a7d4f", None)


def message(n: int):
    item = OpenItem(f"Kid {n}", "Season fees", 12000, f"https://buy.stripe.com/test_{n}")
    balance = ParentBalance(n, f"Parent {n}", f"parent{n}@example.com", (item,))
    rendered = render_email("outstanding_balance", brand=BRAND, balance=balance)
    return build_message(
        rendered,
        sender="paylinks <billing@paylinks.example>",
        to_name=f"Parent {n}",
        to_address=f"parent{n}@example.com",
        reply_to=BRAND.reply_to_email,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000)
    emails = parser.parse_args().emails
    messages = [message(n) for n in range(emails + 1)]
    tenth = max(1, emails // 10)
    directory = Path(tempfile.mkdtemp(prefix="paylinks-bench-outbox-")) / "outbox"
    seconds: list[float] = []
    with OutboxTransport(directory) as outbox:
        for sent in messages[:emails]:
            started = time.perf_counter()
            outbox.send(sent)
            seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    with OutboxTransport(directory) as another:
        another.send(messages[emails])
    fresh = time.perf_counter() - started

    early, late = sum(seconds[:tenth]) / tenth, sum(seconds[-tenth:]) / tenth
    print(f"{emails} emails into one outbox: {sum(seconds):.2f} s in all")
    print(f"  per email, first tenth: {early * 1000:.2f} ms; last tenth: {late * 1000:.2f} ms")
    print(f"  last ÷ first: {late / early:.2f} (about 1: a send costs the same in a full outbox)")
    print(f"  one more from a new transport (another process): {fresh * 1000:.0f} ms")


if __name__ == "__main__":
    main()
