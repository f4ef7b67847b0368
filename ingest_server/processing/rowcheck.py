"""The checks a grammar adds to each event row (run in the validation workers).

* every dimension key cell is looked up in its dimension's keys (``keys.KeyIndex``, shared
  memory-mapped files): an unknown one is a row error ``unknown_reference`` naming the dimension,
  with a near match when there is one (``no school 's001'; 'S001' exists``);
* a key that matches a stored key other than as it is written (``key_match`` trim or casefold,
  or cQube's ``'S001'`` quoting) is landed as the stored key: what the datasets step joins on;
* the time column ``date`` must be a date as cQube's users write it (``invalid_date``).

Integer metrics refusing ``12.7`` come from the grammar's ingestion spec (``coerce: integer``).

Speed: the checks are lines added to the end of the spec's generated row check
(``validation.compiler.RowTail``), ``if row[i] not in good_i: …`` for each column, over each
column's set of values known to be fine as they are (at most ``GOOD_SIZE`` a column, so memory
stays flat however many keys a dimension has): a district or grade column costs what an
``enum`` rule costs, one set lookup a row, and nothing else a row. Only a value not seen lately
costs a call: one hash and one probe of the mapped table. A large dimension's column (a school:
a new key most rows) is looked up a chunk at once (``unsure``); row by row it is the hash and
the probe inline.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Sequence

from ..validation.compiler import RowTail
from .datasets import DatasetTable
from .dates import FORMATS, parse_cqube_date
from .keys import Ambiguous, KeyFiles, key_index, unquoted, xxh3_64

GOOD_SIZE = 8192  # values remembered as fine, per column and worker
ANSWERS_SIZE = 4096  # values remembered as wrong or to be rewritten
RowError = tuple[str | None, str, str]
# (message, landed text): ("", None) fine as it is; ("", text) fine, landed as ``text``
Answer = tuple[str, str | None]


@dataclass(frozen=True)
class KeyCheck:
    column: str  # the event file's column (row 4 of the grammar)
    files: KeyFiles


@dataclass(frozen=True)
class ProcessingChecks:
    """What a grammar checks in each row (picklable; part of the checker's identity), and the
    dataset tables whose partial aggregates the workers compute from the valid rows."""

    keys: tuple[KeyCheck, ...]
    key_match: str  # exact | trim | casefold
    date_column: str | None
    datasets: tuple[DatasetTable, ...] = ()
    metric: str = "number"  # processing.metric
    week: str = "cqube"     # processing.week


class RowProcessing:
    """A grammar's checks of a row as code for the end of the spec's generated row check
    (``tail``: one function a row, a key column costing about what an ``enum`` costs), whose
    ``result`` is ``(errors, row to write)``: the row errors, the grammar's added, or none and
    the row with its keys written as stored (a ``RewrittenRow``, ``_keys_checked``)."""

    def __init__(self, checks: ProcessingChecks, header: Sequence[str],
                 done: Callable[[list, list[str], Any], tuple[list, list[str]]]) -> None:
        where = {name: i for i, name in enumerate(header)}
        mode = checks.key_match
        # Prefixed: these names share the generated function's globals with the compiler's.
        namespace: dict[str, Any] = {"P_X": xxh3_64, "P_done": done}
        body: list[str] = []
        recurring: list[str] = []  # the body without the large dimensions' columns
        large: list[tuple[int, Any]] = []  # (column, exact table) of each large dimension
        misses = []
        seen: list[tuple[int, str]] = []  # (column, its set of values found fine)
        for n, k in enumerate(c for c in checks.keys if c.column in where):
            exact = key_index(k.files).tables["exact"]
            # A small dimension's keys recur: the ones seen are remembered (at most its count).
            good = set() if k.files.count <= GOOD_SIZE else None
            miss = _miss(where[k.column], k.column, "unknown_reference",
                         _key_answer(k.files, mode), exact, good)
            namespace.update({f"P_g{n}": good, f"P_m{n}": miss, f"P_H{n}": exact.hashes,
                              f"P_M{n}": exact.mask})
            misses.append(miss)
            i = where[k.column]
            if good is not None:
                # Seen before: one set lookup, made with the spec's check of the cell
                # (``RowTail.seen``); else the table, off line.
                seen.append((i, f"P_g{n}"))
                body += [f"if unseen and row[{i}] not in P_g{n}:",
                         f"    state = P_m{n}(row, state)"]
                recurring += body[-2:]
            elif not exact.hashes:
                body += [f"state = P_m{n}(row, state)"]
                recurring += body[-1:]
            else:
                # keys.key_hash inline; a key is in its home slot or the next one but rarely.
                body += [f"h = P_X(row[{i}].encode()) | 1", f"j = h & P_M{n}",
                         f"if P_H{n}[j] != h and P_H{n}[(j + 1) & P_M{n}] != h:",
                         f"    state = P_m{n}(row, state)"]
                large.append((i, exact))
        if checks.date_column in where:
            n = len(misses)
            good = set()
            miss = _miss(where[checks.date_column], checks.date_column, "invalid_date",
                         _date_answer, None, good, GOOD_SIZE)
            namespace.update({f"P_g{n}": good, f"P_m{n}": miss})
            misses.append(miss)
            seen.append((where[checks.date_column], f"P_g{n}"))
            body += [f"if unseen and row[{where[checks.date_column]}] not in P_g{n}:",
                     f"    state = P_m{n}(row, state)"]
            recurring += body[-2:]
        width = 1 + max([where[k.column] for k in checks.keys if k.column in where]
                        + [where.get(checks.date_column or "", -1)], default=-1)

        def slow(row: list[str]) -> State:
            """Every column through its miss path: a short row, a cell that is not UTF-8."""
            if len(row) < width:
                return None
            state = None
            for miss in misses:
                state = miss(row, state)
            return state

        namespace["P_slow"] = slow
        self.tail = _tail(namespace, body, seen)
        # With a large dimension, the worker checks a chunk's keys of it at once (``unsure``)
        # and the rows whose keys are fine there with ``tail_known``: the other columns.
        self.unsure: Callable[[Sequence[Sequence[str]]], list[int]] | None = None
        self.tail_known: RowTail | None = None
        if large:
            self.unsure = _LargeKeys(large).unsure
            self.tail_known = _tail(namespace, recurring, seen)


def _tail(namespace: dict[str, Any], body: list[str], seen: list[tuple[int, str]]) -> RowTail:
    return RowTail(lines=("state = None", "try:", *("    " + line for line in body or ["pass"]),
                          "except (IndexError, UnicodeEncodeError):", "    state = P_slow(row)"),
                   namespace=namespace,
                   result="(errs, row) if state is None else P_done(errs, row, state)",
                   seen=tuple(seen))


class _LargeKeys:
    """The keys of a chunk's large-dimension columns looked up at once, with numpy (imported
    here, by the workers that check such a column only): each cell hashed as ``keys.key_hash``
    does (a C loop), then the hashes probed in the mapped table as whole arrays, which lets the
    CPU wait for many table reads at once instead of one per row."""

    def __init__(self, columns: list[tuple[int, Any]]) -> None:
        import numpy
        self.np = numpy
        self.columns = [(itemgetter(i), numpy.frombuffer(t.hashes, numpy.uint64),
                         numpy.uint64(t.mask)) for i, t in columns]

    def unsure(self, rows: Sequence[Sequence[str]]) -> list[int]:
        """The positions in ``rows`` (records as long as the header) whose key in some large
        dimension is not a stored key as written (unknown, or to be landed as another text):
        only these need the whole ``check``."""
        np, n = self.np, len(rows)
        found: list[Any] = []
        try:
            for cell, table, mask in self.columns:
                h = np.fromiter(map(xxh3_64, map(str.encode, map(cell, rows))), np.uint64, n)
                h |= np.uint64(1)
                slot = h & mask
                pending = np.arange(n)
                while pending.size:  # linear probing, as _miss does, for every row at once
                    at = table[slot[pending]]
                    want = h[pending]
                    end = (at == 0) | (at == (want ^ np.uint64(1)))
                    found.append(pending[end])
                    pending = pending[(at != want) & ~end]
                    slot[pending] = (slot[pending] + np.uint64(1)) & mask
        except UnicodeEncodeError:  # a cell that is not UTF-8: every row its own way
            return list(range(n))
        return np.concatenate(found).tolist() if found else []


State = tuple[list[RowError], "list[str] | None"] | None


def _miss(index: int, name: str, code: str, answer: Callable[[str], Answer], exact: Any,
          good: set[str] | None, limit: int = 0) -> Callable[[list[str], State], State]:
    """A column's check of a value the generated code did not find fine: the exact table
    probed to the end, then ``answer`` (cached) for the rest. A value found fine goes into
    ``good`` (when there is one; emptied at ``limit`` values, if one is given)."""
    answers: dict[str, Answer] = {}
    hashes, mask = (exact.hashes, exact.mask) if exact else ((), 0)

    def fine(value: str) -> None:
        if good is not None and value:  # never empty: see RowTail.seen
            if limit and len(good) >= limit:
                good.clear()
            good.add(value)

    def miss(row: list[str], state: State) -> State:
        value = row[index]
        if hashes:
            # A slot holding the hash as it is (odd): the cell is a stored key as written (a
            # quoted cell never is one: keys.py keeps the unquoted text).
            h = xxh3_64(value.encode("utf-8", "surrogatepass")) | 1
            i = h & mask
            while True:
                found = hashes[i]
                if found == h:
                    fine(value)
                    return state
                if found == 0 or found == h ^ 1:
                    break
                i = (i + 1) & mask
        result = answers.get(value)
        if result is None:
            result = answer(value)
            if result == ("", None):
                fine(value)
                return state
            if len(answers) >= ANSWERS_SIZE:
                answers.clear()
            answers[value] = result
        message, text = result
        if message:
            if state is None or state[1] is not None:
                state = ([], None)
            state[0].append((name, code, message))
        elif text is not None and (state is None or not state[0]):
            landed = list(row) if state is None else state[1]
            landed[index] = text
            state = ([], landed)
        return state

    return miss


def _key_answer(files: KeyFiles, mode: str) -> Callable[[str], Answer]:
    index = key_index(files)
    where = f"dimensions.{files.dimension}.{files.column}"

    def answer(value: str) -> Answer:
        key = index.match(value, mode)
        if key is None:
            message = f"no {files.dimension} {value!r} ({where})"
            near = index.near(value)
            if near is not None:
                message += f"; {near!r} exists"
            return message, None
        if isinstance(key, Ambiguous):
            return (f"no {files.dimension} {value!r} ({where}); several keys match it but for "
                    f"blanks or case, e.g. {str(key)!r}"), None
        return "", None if key == value else key

    return answer


def _date_answer(value: str) -> Answer:
    text = unquoted(value)
    try:
        parse_cqube_date(text)
    except ValueError:
        return f"{value!r} is not a date ({FORMATS})", None
    return "", None if text == value else text
