"""The outbox's pages: every email written to the outbox folder, shown as the parent would see it.

Beside each `<name>.eml` the outbox keeps `<name>.html`, the message's HTML part made safe to view
(no script may run, links open a tab of their own). `index.html` shows the newest emails first,
each with its recipient, subject and time and the HTML in a sandboxed frame, linking the `.eml`.

A blast writes thousands of emails, so nothing here grows with the outbox on every send: the
newest page is at most `PAGE_SIZE` emails, and older emails sit on numbered pages
(`index-0001.html` holds emails 1 to 50, the oldest), each rewritten only when what it holds
changes. An email's headers are read once per process, and only for the pages being written.
"""

from __future__ import annotations

import bisect
import html
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

PAGE_SIZE = 50  # emails a page shows, each in a frame of its own
RESCAN_S = 2.0  # read the folder again at least this often while sending
INDEX = "index.html"
_PAGE = re.compile(r"index-(\d{4,})\.html")
_SIGNATURE = re.compile(r"<!-- outbox page: (.*?) -->")

# Put into each viewable copy's <head>: no script, no fetch beyond images, links in a new tab.
_SAFE_HEAD = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'\">\n"
    '<base target="_blank">\n'
)
_HEAD_TAG = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class OutboxEntry:
    """One email of the outbox, as its page lists it."""

    filename: str  # the .eml
    sent: str  # when, as words
    to: str
    subject: str

    @property
    def view_name(self) -> str:
        return view_name(self.filename)


def view_name(eml_name: str) -> str:
    return eml_name.removesuffix(".eml") + ".html"


def sent_words(date_header: object) -> str:
    """A Date header as words in this machine's time zone, named: "Dec 3, 2026, 5:22:08 PM UTC"."""
    try:
        local = parsedate_to_datetime(str(date_header)).astimezone()
    except (TypeError, ValueError):
        return "(no date)"
    hour = local.strftime("%I").lstrip("0") or "12"
    return f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M:%S %p} {local.tzname()}"


def entry_of(filename: str, headers: Message) -> OutboxEntry:
    return OutboxEntry(
        filename,
        sent_words(headers.get("Date")),
        str(headers.get("To", "")),
        str(headers.get("Subject", "")),
    )


def read_entry(path: Path) -> OutboxEntry:
    """The headers of one .eml, reading no further than they go."""
    with path.open("rb") as file:
        head = file.read(65536)
    end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0), default=len(head))
    headers = BytesHeaderParser(policy=policy.default).parsebytes(head[:end] + b"\r\n\r\n")
    return entry_of(path.name, headers)


def viewable_html(message: Message) -> str | None:
    """The message's HTML part with the safe head put in, or None when it has none."""
    if not isinstance(message, EmailMessage):
        return None
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return None
    content = part.get_content()
    match = _HEAD_TAG.search(content)
    if match is None:
        return _SAFE_HEAD + content
    return content[: match.end()] + "\n" + _SAFE_HEAD + content[match.end() :]


def write_view(directory: Path, eml_name: str, message: Message | None = None) -> bool:
    """Write `<name>.html` beside `<name>.eml` (from `message`, else read from the file)."""
    if message is None:
        with (directory / eml_name).open("rb") as file:
            message = BytesParser(policy=policy.default).parse(file)
    page = viewable_html(message)
    if page is None:
        return False
    write_atomically(directory / view_name(eml_name), page)
    return True


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}-{uuid.uuid4().hex}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def page_name(number: int) -> str:
    return f"index-{number:04d}.html"


class OutboxPages:
    """Keeps `index.html` and the numbered pages current; one per outbox transport (not
    thread-safe on its own: the transport calls it under its lock).

    The folder, not memory, says what is there, since other processes may share the outbox: it
    is read again whenever it changed since this process last wrote to it (or `RESCAN_S` passed).
    Otherwise a send adds its one name to what was read, so a blast never lists the folder per email.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._emails: list[str] = []  # oldest first: the names start with the time they were written
        self._views: set[str] = set()
        self._entries: dict[str, OutboxEntry] = {}
        self._sections: dict[str, str] = {}  # each email's part of a page, once made
        self._signatures: dict[int, str] = {}  # what each numbered page was last written with
        self._known_mtime: int | None = None
        self._read_at = 0.0
        self._stale = True

    def before_writing(self) -> None:
        """Note whether anyone else changed the folder since this process last wrote to it."""
        if not self._stale:
            changed = _mtime(self.directory) != self._known_mtime
            self._stale = changed or time.monotonic() - self._read_at > RESCAN_S

    def added(self, entry: OutboxEntry, *, viewable: bool) -> None:
        """This process wrote `entry`'s .eml (and its viewable copy, when there is one)."""
        self._entries[entry.filename] = entry
        if not self._stale:
            bisect.insort(self._emails, entry.filename)
            if viewable:
                self._views.add(entry.view_name)

    def rewrite(self) -> None:
        if self._stale:
            self._read_folder()
        emails = self._emails
        numbered = len(emails) // PAGE_SIZE if len(emails) > PAGE_SIZE else 0
        for number in range(1, numbered + 1):
            self._write_numbered(number, numbered)
        newest = emails[-PAGE_SIZE:][::-1]
        body = _page(
            "paylinks outbox",
            _summary_of_index(len(emails), len(newest), numbered),
            self._sections_of(newest),
        )
        write_atomically(self.directory / INDEX, body)
        self._known_mtime = _mtime(self.directory)

    def _read_folder(self) -> None:
        emails: list[str] = []
        views: set[str] = set()
        pages: set[str] = set()
        with os.scandir(self.directory) as found:
            for item in found:
                name = item.name
                if name.startswith(".") or name == INDEX:
                    continue
                if name.endswith(".eml"):
                    emails.append(name)
                elif _PAGE.fullmatch(name):
                    pages.add(name)
                elif name.endswith(".html"):
                    views.add(name)
        emails.sort()
        numbered = len(emails) // PAGE_SIZE if len(emails) > PAGE_SIZE else 0
        # Viewable copies whose .eml was removed, and numbered pages past the last one, go.
        wanted = {view_name(name) for name in emails}
        for name in views - wanted:
            (self.directory / name).unlink(missing_ok=True)
        for name in pages:
            number = int(name[len("index-") : -len(".html")])
            if number > numbered:
                (self.directory / name).unlink(missing_ok=True)
        self._emails, self._views = emails, views & wanted
        self._signatures.clear()  # what another process wrote is read back from each page's first line
        self._read_at, self._stale = time.monotonic(), False

    def _write_numbered(self, number: int, numbered: int) -> None:
        names = self._emails[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        signature = f"{names[0]} {names[-1]} {'next' if number < numbered else 'last'}"
        if self._signatures.get(number) == signature:
            return
        path = self.directory / page_name(number)
        if number not in self._signatures and _written_signature(path) == signature:
            self._signatures[number] = signature  # written by another process, or an earlier run
            return
        first = (number - 1) * PAGE_SIZE + 1
        body = _page(
            f"paylinks outbox: emails {first} to {first + PAGE_SIZE - 1}",
            _summary_of_page(number, numbered, len(self._emails)),
            self._sections_of(names[::-1]),
        )
        write_atomically(path, f"<!-- outbox page: {signature} -->\n{body}")
        self._signatures[number] = signature

    def _sections_of(self, names: Iterable[str]) -> list[str]:
        sections = []
        for name in names:
            section = self._sections.get(name)
            if section is None:
                entry = self._entries.get(name)
                if entry is None:
                    entry = self._entries[name] = read_entry(self.directory / name)
                viewable = entry.view_name in self._views
                # Written before the outbox kept a viewable copy, or by another process just now.
                if not viewable and write_view(self.directory, name):
                    self._views.add(entry.view_name)
                    viewable = True
                section = self._sections[name] = _entry_html(entry, viewable)
            sections.append(section)
        return sections


def _mtime(directory: Path) -> int:
    return os.stat(directory).st_mtime_ns


def _written_signature(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8") as file:
            match = _SIGNATURE.fullmatch(file.readline().rstrip("\n"))
    except OSError:
        return None
    return match.group(1) if match else None


def _emails(count: int) -> str:
    return f"{count} email" if count == 1 else f"{count} emails"


def _range(number: int) -> str:
    first = (number - 1) * PAGE_SIZE + 1
    return f"{first}–{first + PAGE_SIZE - 1}"


def _summary_of_index(total: int, shown: int, numbered: int) -> str:
    if total == 0:
        return "<p>No emails yet.</p>"
    if not numbered:
        return f"<p>{_emails(total)} in this folder, newest first.</p>"
    links = " · ".join(f'<a href="{page_name(n)}">{_range(n)}</a>' for n in range(1, numbered + 1))
    return (
        f"<p>{_emails(total)} in this folder, newest first; this page shows the newest {shown}.</p>\n"
        f"<nav>Earlier emails, {PAGE_SIZE} to a page (1 is the oldest): {links}</nav>"
    )


def _summary_of_page(number: int, numbered: int, total: int) -> str:
    links = []
    if number > 1:
        links.append(f'<a href="{page_name(number - 1)}">emails {_range(number - 1)}</a>')
    if number < numbered:
        links.append(f'<a href="{page_name(number + 1)}">emails {_range(number + 1)}</a>')
    links.append(f'<a href="{INDEX}">the newest emails</a>')
    return (
        f"<p>Emails {_range(number)} of the outbox (1 is the oldest), newest first.</p>\n"
        f"<nav>{' · '.join(links)}</nav>"
    )


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; padding: 16px;
       max-width: 760px; color: #1f2328; background: #f4f5f7; overflow-wrap: anywhere; }
h1 { font-size: 22px; }
nav { margin: 8px 0 16px; line-height: 1.8; }
nav a { white-space: nowrap; }
.email { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin: 0 0 24px; padding: 12px; }
.email dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 8px; }
.email dt { font-weight: bold; color: #57606a; }
.email dd { margin: 0; }
.email iframe { display: block; width: 100%; height: 640px; border: 1px solid #eaeef2; background: #f4f5f7; }
.file { margin: 8px 0 0; font-size: 14px; }
"""


def _entry_html(entry: OutboxEntry, viewable: bool) -> str:
    to, subject = html.escape(entry.to), html.escape(entry.subject)
    eml = html.escape(quote(entry.filename))
    frame = (
        f'<iframe src="{html.escape(quote(entry.view_name))}" title="The email to {to}, as sent"'
        ' sandbox="allow-popups allow-popups-to-escape-sandbox" loading="lazy" referrerpolicy="no-referrer"></iframe>'
        if viewable
        else "<p>This email has no HTML part; the message file below holds its text.</p>"
    )
    return (
        '<section class="email">\n'
        f"<dl><dt>To</dt><dd>{to}</dd><dt>Subject</dt><dd>{subject}</dd>"
        f"<dt>Sent</dt><dd>{html.escape(entry.sent)}</dd></dl>\n{frame}\n"
        f'<p class="file">The message file, for a mail client: <a href="{eml}">{html.escape(entry.filename)}</a></p>\n'
        "</section>"
    )


def _page(title: str, summary: str, sections: list[str]) -> str:
    shown = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{summary}
{shown}
</body>
</html>
"""
