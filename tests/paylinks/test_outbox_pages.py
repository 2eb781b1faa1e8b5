"""The outbox's pages, as a person browsing `var/outbox/index.html` sees them: every email shown
as sent (its HTML in a sandboxed frame), with its recipient, subject and time, newest first, and
the `.eml` beside it; older emails on numbered pages that a new email does not rewrite."""

from __future__ import annotations

import itertools
import json
import re
import time
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path

import pytest

from paylinks.messaging import outbox_index
from paylinks.messaging.render import Brand, OpenItem, ParentBalance, build_message, render_email
from paylinks.messaging.transports import OutboxTransport
from tests.browser import ARTIFACTS_DIR
from tests.office.cdp import Browser

BRAND = Brand("Riverside FC", "treasurer@riverside.example", "#0a7d4f", None)
SENT = re.compile(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2} [AP]M \S+")


def message(n: int, *, parent: str | None = None):
    item = OpenItem(f"Kid {n}", "Spring season fees", 1000 + n, f"https://buy.stripe.com/test_kid_{n}")
    name = parent or f"Parent {n}"
    balance = ParentBalance(n, name, f"parent{n}@example.com", (item,))
    rendered = render_email("outstanding_balance", brand=BRAND, balance=balance)
    return build_message(
        rendered,
        sender="paylinks <billing@paylinks.example>",
        to_name=name,
        to_address=f"parent{n}@example.com",
        reply_to=BRAND.reply_to_email,
    )


class _Page(HTMLParser):
    """Each email section's fields, its frame and its links; the page's other links."""

    def __init__(self) -> None:
        super().__init__()
        self.emails: list[dict] = []
        self.links: list[str] = []
        self._field: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self.emails.append({"links": []})
        elif tag in ("dt", "dd"):
            self._text = []
        elif tag == "iframe":
            self.emails[-1]["frame"] = attributes
        elif tag == "a":
            (self.emails[-1]["links"] if self.emails else self.links).append(attributes["href"])

    def handle_endtag(self, tag):
        if tag == "dt":
            self._field = "".join(self._text)
        elif tag == "dd":
            self.emails[-1][self._field] = "".join(self._text)

    def handle_data(self, data):
        self._text.append(data)


def read_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def subject_of(path: Path) -> str:
    with path.open("rb") as file:
        return str(BytesParser(policy=policy.default).parse(file)["Subject"])


def test_the_index_shows_each_email_as_sent_newest_first_with_recipient_subject_and_time(tmp_path):
    with OutboxTransport(tmp_path) as outbox:
        for n in range(3):
            outbox.send(message(n, parent="<script>alert(1)</script>" if n == 1 else None))

    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in index
    page = read_page(tmp_path / "index.html")
    assert [email["Subject"] for email in page.emails] == [
        "Riverside FC: you have $10.02 outstanding",
        "Riverside FC: you have $10.01 outstanding",
        "Riverside FC: you have $10.00 outstanding",
    ]  # newest first
    for n, email in zip((2, 1, 0), page.emails, strict=True):
        assert f"parent{n}@example.com" in email["To"]
        assert SENT.fullmatch(email["Sent"]), email["Sent"]
        # The .eml it names is the message with that subject.
        (eml,) = [link for link in email["links"] if link.endswith(".eml")]
        assert subject_of(tmp_path / eml) == email["Subject"]
        # The frame shows that email's HTML, with its Pay Now link; nothing in it may run.
        frame = email["frame"]
        assert frame["sandbox"] == "allow-popups allow-popups-to-escape-sandbox"
        shown = (tmp_path / frame["src"]).read_text(encoding="utf-8")
        assert f'href="https://buy.stripe.com/test_kid_{n}"' in shown and ">Pay Now</a>" in shown
        assert "default-src 'none'" in shown and "<script" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.emails[1]["To"] + index


def test_a_big_outbox_is_paged_and_a_new_email_rewrites_no_full_page(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox_index, "PAGE_SIZE", 5)
    with OutboxTransport(tmp_path) as outbox:
        for n in range(13):
            outbox.send(message(n))
    pages = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("index-*.html")}
    assert sorted(pages) == ["index-0001.html", "index-0002.html"]
    time.sleep(0.01)

    with OutboxTransport(tmp_path) as another_process:
        another_process.send(message(13))

    index = read_page(tmp_path / "index.html")
    assert [email["To"] for email in index.emails] == [
        f"Parent {n} <parent{n}@example.com>" for n in (13, 12, 11, 10, 9)
    ]
    assert [link for link in index.links if link.startswith("index-")] == [
        "index-0001.html",
        "index-0002.html",
    ]
    for number, expected in ((1, range(4, -1, -1)), (2, range(9, 4, -1))):
        page = read_page(tmp_path / f"index-{number:04d}.html")
        assert [email["To"] for email in page.emails] == [
            f"Parent {n} <parent{n}@example.com>" for n in expected
        ]
        assert all((tmp_path / link).is_file() for email in page.emails for link in email["links"])
        assert "index.html" in page.links
    # The full pages were not written again for the new email.
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("index-*.html")} == pages


def test_an_outbox_from_before_gets_its_views_and_loses_what_was_removed(tmp_path):
    with OutboxTransport(tmp_path) as outbox:
        outbox.send(message(1))
    (old,) = tmp_path.glob("*.eml")
    old.with_suffix(".html").unlink()  # written before the outbox kept viewable copies
    (tmp_path / "20200101-000000-000000-0001-gone-example-com.html").write_text("its .eml was removed")
    (tmp_path / "index-0009.html").write_text("a page of an outbox since cleared")

    with OutboxTransport(tmp_path) as outbox:
        outbox.send(message(2))

    assert sorted(
        path.name for path in tmp_path.glob("*.html") if not path.name.startswith("index")
    ) == sorted(path.with_suffix(".html").name for path in tmp_path.glob("*.eml"))
    assert not (tmp_path / "index-0009.html").exists()
    page = read_page(tmp_path / "index.html")
    assert len(page.emails) == 2 and all("frame" in email for email in page.emails)
    assert "https://buy.stripe.com/test_kid_1" in (tmp_path / page.emails[1]["frame"]["src"]).read_text()


@pytest.mark.slow
def test_chromium_shows_every_email_of_the_index_in_its_frame(tmp_path):
    outbox = tmp_path / "outbox"
    with OutboxTransport(outbox) as transport:
        for n in range(3):
            transport.send(message(n))
    subjects = [email["Subject"] for email in read_page(outbox / "index.html").emails]

    with Browser(tmp_path / "chromium") as browser:
        browser.open((outbox / "index.html").as_uri())
        # Each frame is its own document, showing its email: its subject, its Pay Now link.
        frames = _frames(browser, len(subjects))
        assert [seen["title"] for _, seen in frames] == subjects
        assert [seen["pay"] for _, seen in frames] == [
            [f"https://buy.stripe.com/test_kid_{n}"] for n in (2, 1, 0)
        ]
        assert all(url.startswith(outbox.as_uri()) and url.endswith(".html") for url, _ in frames)
        browser.screenshot(ARTIFACTS_DIR / "outbox-index.png")
        browser.send(
            "Emulation.setDeviceMetricsOverride", width=390, height=900, deviceScaleFactor=1, mobile=True
        )
        browser.open((outbox / "index.html").as_uri())
        assert browser.js("document.documentElement.scrollWidth") <= 390
        browser.screenshot(ARTIFACTS_DIR / "outbox-index-phone.png")

        # One email on its own: its Pay Now opens a tab of its own, and no script can run.
        browser.open(outbox.joinpath(frames[0][0].rsplit("/", 1)[1]).as_uri())
        seen = browser.js(
            """({text: document.body.innerText, base: document.querySelector('base').target,
                 pay: [...document.querySelectorAll('a')].filter(a => a.innerText === 'Pay Now').map(a => a.href)})"""
        )
        assert "Total due: $10.02" in seen["text"] and seen["base"] == "_blank"
        assert seen["pay"] == ["https://buy.stripe.com/test_kid_2"], json.dumps(seen)


_FRAME_IDS = itertools.count(1_000_000)


def _frames(browser: Browser, count: int, timeout: float = 15) -> list[tuple[str, str]]:
    """The index's frames, top to bottom, once `count` have loaded: each one's url and what it
    shows (its title and its "Pay Now" links, read inside the frame's own document)."""
    deadline = time.monotonic() + timeout
    while True:
        targets = {
            t["url"]: t for t in browser.send("Target.getTargets")["targetInfos"] if t["type"] == "iframe"
        }
        order = browser.js("[...document.querySelectorAll('iframe')].map(f => f.src)")
        if len(targets) >= count and all(url in targets for url in order):
            shown = [_inside(browser, targets[url]["targetId"], FRAME_SHOWS) for url in order]
            if all(seen and seen["loaded"] for seen in shown):
                return [(url, seen) for url, seen in zip(order, shown, strict=True)]
        if time.monotonic() > deadline:
            raise AssertionError(f"the frames never loaded: {order} {list(targets)}")
        time.sleep(0.1)


FRAME_SHOWS = """({loaded: document.readyState === 'complete', title: document.title,
  pay: [...document.querySelectorAll('a')].filter(a => a.innerText.trim() === 'Pay Now').map(a => a.href)})"""


def _inside(browser: Browser, target_id: str, expression: str):
    """Evaluate `expression` in a frame that runs in a process of its own (an attached session)."""
    session = browser.send("Target.attachToTarget", targetId=target_id, flatten=True)["sessionId"]
    message_id = next(_FRAME_IDS)
    params = {"expression": expression, "returnByValue": True}
    browser.socket.send(
        json.dumps({"id": message_id, "sessionId": session, "method": "Runtime.evaluate", "params": params})
    )
    while True:
        reply = json.loads(browser.socket.recv(timeout=30))
        if reply.get("id") == message_id:
            return reply.get("result", {}).get("result", {}).get("value")
