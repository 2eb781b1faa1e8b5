"""The mail policy paylinks builds messages with: the standard library's SMTP policy, remembering
the headers every message repeats.

A blast's messages share most of their headers: the sender and the club's reply-to address,
MIME-Version, each part's Content-Type and Content-Transfer-Encoding. The standard library parses
every header it is given anew (and first builds a class to parse it with), then folds each again
when the message is written out: about half of the time a message takes to build and send. A
header object never changes once made, so the one made for `Content-Transfer-Encoding:
quoted-printable` serves every message, and so does its folded text.

Only the headers named in `_REPEATED` are kept, and a Content-Type with a boundary only when it
is `BOUNDARY`, the one paylinks gives every message (any other multipart has its own); a header
made for one message (a parent's name and address, a subject) is parsed for its own message as
before. The bytes on the wire are the same either way (a test says so).

`BOUNDARY` lies between a message's text and HTML parts. Both parts are quoted-printable, in
which "=" starts only a hex pair or a soft line break, never "=_", so no body can contain it and
one boundary serves every message (RFC 2046 asks only that). The standard library would pick one
at random, search both bodies for it with a newly compiled regular expression, and parse and fold
the Content-Type anew: a fifth of building and writing out a message.
"""

from __future__ import annotations

from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.policy import EmailPolicy
from typing import Any

__all__ = ["BOUNDARY", "POLICY"]

BOUNDARY = "=_paylinks_alternative"

# Lower-cased names of headers whose values repeat from message to message.
_REPEATED = frozenset(
    {"from", "reply-to", "mime-version", "content-type", "content-transfer-encoding", "list-unsubscribe-post"}
)
_OUR_BOUNDARY = f'boundary="{BOUNDARY}"'
_KEPT = 256  # distinct values kept (a few per club); past that the memory starts afresh


class _RepeatingHeaders(HeaderRegistry):
    """The default header registry, keeping each header class it builds and each repeated header."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}
        self._made: dict[tuple[str, ...], BaseHeader] = {}
        self._kept: dict[int, BaseHeader] = {}  # the same headers by identity, for `folded`
        self._folded: dict[tuple[Any, ...], str] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> _RepeatingHeaders:
        return self  # one memory for every message, as a copied message's policy keeps it

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _shared_registry, ()

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls

    def __call__(self, name: str, value: Any) -> BaseHeader:
        key = self._key(name, value)
        if key is None:
            return self[name](name, value)
        header = self._made.get(key)
        if header is None:
            header = self[name](name, value)
            # Without a lock: two threads making the same header at once keep one of the two (the
            # other is folded the usual way), and a clear at worst forgets a header just made.
            if len(self._made) >= _KEPT:
                self._made.clear()
                self._kept.clear()
                self._folded.clear()
            self._made[key] = self._kept[id(header)] = header
        return header

    @staticmethod
    def _key(name: str, value: Any) -> tuple[str, ...] | None:
        if name.lower() not in _REPEATED:
            return None
        if isinstance(value, Address):  # the sender or the club's reply-to, as `headers` made it
            return (name, "address", value.display_name, value.addr_spec)
        if isinstance(value, str) and ("boundary=" not in value or _OUR_BOUNDARY in value):
            return (name, "text", value)
        return None

    def folded(self, header: Any, policy: EmailPolicy) -> str | None:
        """This kept header's text as `policy` writes it, or None for a header that is not kept."""
        kept = self._kept.get(id(header))
        if kept is None or kept is not header:
            return None
        key = (id(kept), policy.utf8, policy.linesep, policy.max_line_length)
        text = self._folded.get(key)
        if text is None:
            text = self._folded[key] = kept.fold(policy=policy)
        return text


class _Policy(EmailPolicy):
    """EmailPolicy writing a kept header from its remembered folded text."""

    def _kept_text(self, value: Any) -> str | None:
        factory = self.header_factory
        if isinstance(factory, _RepeatingHeaders) and hasattr(value, "name"):
            return factory.folded(value, self)
        return None

    def fold(self, name: str, value: Any) -> str:
        text = self._kept_text(value)
        return super().fold(name, value) if text is None else text

    def fold_binary(self, name: str, value: Any) -> bytes:
        text = self._kept_text(value)
        if text is None:
            return super().fold_binary(name, value)
        return text.encode("utf8" if self.utf8 else "ascii", "surrogateescape")  # as EmailPolicy does


# The SMTP policy (CRLF line ends, 78-character lines), with the memory above.
POLICY: EmailPolicy = _Policy(linesep="\r\n", header_factory=_RepeatingHeaders())


def _shared_registry() -> HeaderRegistry:
    """The one registry, for a message unpickled in this process."""
    return POLICY.header_factory  # type: ignore[return-value]
