"""Formula-safe CSV: a cell that a spreadsheet would run as a formula gets a leading ``'``.

An error file holds the client's own values, which may start with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return: Excel and LibreOffice treat those as formulas (CSV injection, OWASP).
The exact file stays the default download (it is what a user fixes and uploads again); this
variant is for opening in a spreadsheet. It streams: a small state machine over the decoded text
finds where each cell's value starts, quoted or not, and never holds more than one chunk.
"""

from __future__ import annotations

import codecs
from typing import AsyncIterator

# In an unquoted cell a CR ends the record (an empty last cell), so it is only a trigger inside quotes.
UNQUOTED_TRIGGERS = frozenset("=+-@\t")
QUOTED_TRIGGERS = UNQUOTED_TRIGGERS | {"\r"}


class FormulaEscaper:
    """Feed text in any pieces; each call returns the escaped text of that piece."""

    def __init__(self) -> None:
        self.at_cell_start = True
        self.in_quotes = False
        self.quote_pending = False  # saw a '"' inside quotes: a closing quote or the first of ""
        self.first_in_quotes = False  # just after a cell's opening quote

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            if self.first_in_quotes:
                self.first_in_quotes = False
                if ch in QUOTED_TRIGGERS:
                    out.append("'")
                if ch == '"':
                    self.quote_pending = True
                    out.append(ch)
                    continue
            elif self.quote_pending:
                self.quote_pending = False
                if ch == '"':  # an escaped quote: still inside
                    out.append(ch)
                    continue
                self.in_quotes = False  # the quote before closed the cell's quoted part
            elif self.in_quotes:
                if ch == '"':
                    self.quote_pending = True
                out.append(ch)
                continue
            if self.in_quotes:
                out.append(ch)
                continue
            if ch in ",\n\r":
                self.at_cell_start = True
            elif self.at_cell_start:
                self.at_cell_start = False
                if ch == '"':
                    self.in_quotes = self.first_in_quotes = True
                elif ch in UNQUOTED_TRIGGERS:
                    out.append("'")
            out.append(ch)
        return "".join(out)


async def formula_safe(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The UTF-8 CSV ``chunks`` with formula-like cells escaped."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    escaper = FormulaEscaper()
    async for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield escaper.feed(text).encode("utf-8")
    tail = decoder.decode(b"", final=True)
    if tail:
        yield escaper.feed(tail).encode("utf-8")
