"""The JSON Schema ``format``s of ajv-formats (its "full" mode, as cQube uses them), in Python.

Each entry is ``name -> predicate(text) -> bool``; a format only ever looks at text (a number
or a blank-as-null cell is not checked, as in JSON Schema). The regular expressions are those
of ajv-formats 2.x ``src/formats.ts``, with JavaScript's ASCII-only ``\\d`` written ``[0-9]``,
its end-of-input ``$`` written ``\\Z`` (Python's ``$`` also matches before a final newline) and
``/i`` as ``re.IGNORECASE``. Two are approximations, said here so nobody relies on more:
``regex`` compiles the text as a *Python* regular expression, and ``url``'s host part accepts
letters ``\\u00a1``-``\\uffff`` as ajv-formats does but without its IP range exclusions.
"""

from __future__ import annotations

import re
from typing import Callable

_I = re.IGNORECASE
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(z|[+-][0-9]{2}(?::?[0-9]{2})?)?\Z",
                   _I)
# JavaScript's \s: Unicode white space and line terminators (str.split on /t|\s/i).
_DATE_TIME_SEPARATOR = re.compile(r"[tT\s\ufeff]")

_H16 = r"[0-9a-f]{1,4}"
_IPV4_URI = r"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_IPV6_URI = (
    rf"(?:(?:(?:{_H16}:){{6}}|::(?:{_H16}:){{5}}|(?:{_H16})?::(?:{_H16}:){{4}}"
    rf"|(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}|(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}"
    rf"|(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:|(?:(?:{_H16}:){{0,4}}{_H16})?::)"
    rf"(?:{_H16}:{_H16}|{_IPV4_URI})|(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}"
    rf"|(?:(?:{_H16}:){{0,6}}{_H16})?::)"
)
_PCHAR = r"(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})"
_URI = re.compile(
    r"(?:[a-z][a-z0-9+\-.]*:)(?:/?/(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*@)?"
    rf"(?:\[(?:{_IPV6_URI}|[Vv][0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+)\]|{_IPV4_URI}"
    r"|(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})*)(?::[0-9]*)?"
    rf"(?:/{_PCHAR}*)*|/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?|{_PCHAR}+(?:/{_PCHAR}*)*)"
    r"(?:\?(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?"
    r"(?:#(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?\Z", _I)
_PCHAR_Q = r"(?:[a-z0-9\-._~!$&'\"()*+,;=:@]|%[0-9a-f]{2})"
_URI_REFERENCE = re.compile(
    r"(?:[a-z][a-z0-9+\-.]*:)?(?:/?/(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*@)?"
    rf"(?:\[(?:{_IPV6_URI}|[Vv][0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+)\]|{_IPV4_URI}"
    r"|(?:[a-z0-9\-._~!$&'\"()*+,;=]|%[0-9a-f]{2})*)(?::[0-9]*)?"
    rf"(?:/{_PCHAR_Q}*)*|/(?:{_PCHAR_Q}+(?:/{_PCHAR_Q}*)*)?|{_PCHAR_Q}+(?:/{_PCHAR_Q}*)*)?"
    r"(?:\?(?:[a-z0-9\-._~!$&'\"()*+,;=:@/?]|%[0-9a-f]{2})*)?"
    r"(?:#(?:[a-z0-9\-._~!$&'\"()*+,;=:@/?]|%[0-9a-f]{2})*)?\Z", _I)
_URI_TEMPLATE = re.compile(
    r"(?:(?:[^\x00-\x20\"'<>%\\^`{|}]|%[0-9a-f]{2})|\{[+#./;?&=,!@|]?(?:[a-z0-9_]|%[0-9a-f]{2})+"
    r"(?::[1-9][0-9]{0,3}|\*)?(?:,(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?)*\})*\Z", _I)
_URL = re.compile(
    r"(?:https?|ftp)://(?:\S+(?::\S*)?@)?(?:(?:[a-z0-9\u00a1-\uffff]+-)*[a-z0-9\u00a1-\uffff]+)"
    r"(?:\.(?:[a-z0-9\u00a1-\uffff]+-)*[a-z0-9\u00a1-\uffff]+)*(?:\.(?:[a-z\u00a1-\uffff]{2,}))"
    r"(?::[0-9]{2,5})?(?:/\S*)?\Z", _I)
_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z", _I)
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?\Z", _I)
_IPV4 = re.compile(_IPV4_URI + r"\Z")
_D8 = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"({_D8}(\.{_D8}){{3}})"
_IPV6 = re.compile(
    rf"((({_H16}:){{7}}({_H16}|:))|(({_H16}:){{6}}(:{_H16}|{_V4}|:))"
    rf"|(({_H16}:){{5}}(((:{_H16}){{1,2}})|:{_V4}|:))"
    rf"|(({_H16}:){{4}}(((:{_H16}){{1,3}})|((:{_H16})?:{_V4})|:))"
    rf"|(({_H16}:){{3}}(((:{_H16}){{1,4}})|((:{_H16}){{0,2}}:{_V4})|:))"
    rf"|(({_H16}:){{2}}(((:{_H16}){{1,5}})|((:{_H16}){{0,3}}:{_V4})|:))"
    rf"|(({_H16}:){{1}}(((:{_H16}){{1,6}})|((:{_H16}){{0,4}}:{_V4})|:))"
    rf"|(:(((:{_H16}){{1,7}})|((:{_H16}){{0,5}}:{_V4})|:)))\Z", _I)
_UUID = re.compile(r"(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}\Z", _I)
_DURATION = re.compile(
    r"P(?!\Z)(([0-9]+Y)?([0-9]+M)?([0-9]+D)?(T(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9]+S)?)?"
    r"|([0-9]+W)?)\Z")
_JSON_POINTER = re.compile(r"(?:/(?:[^~/]|~0|~1)*)*\Z", re.DOTALL)
_JSON_POINTER_FRAGMENT = re.compile(
    r"#(?:/(?:[a-z0-9_\-.!$&'()*+,;:=@]|%[0-9a-f]{2}|~0|~1)*)*\Z", _I)
_RELATIVE_JSON_POINTER = re.compile(r"(?:0|[1-9][0-9]*)(?:#|(?:/(?:[^~/]|~0|~1)*)*)\Z",
                                    re.DOTALL)
_Z_ANCHOR = re.compile(r"[^\\]\\Z")
_NOT_URI_FRAGMENT = re.compile(r"[/:]")


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _is_date(text: str) -> bool:
    m = _DATE.match(text)
    if not m:
        return False
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    return 1 <= month <= 12 and 1 <= day <= (29 if month == 2 and _leap(year) else _DAYS[month])


# A file's dates are few and repeat (a day, a month of days): the verdicts of the last ones seen,
# a dict lookup instead of a match and three int(). Only 10-character texts are kept, at most
# _DATES_KEPT (cleared when full): a column of all-different dates costs a store a cell, no more.
_DATES_SEEN: dict[str, bool] = {}
_DATES_KEPT = 4096


def is_date(text: str) -> bool:
    seen = _DATES_SEEN.get(text)
    if seen is None:
        if len(text) != 10:  # YYYY-MM-DD in ASCII digits, and nothing long is kept
            return False
        if len(_DATES_SEEN) >= _DATES_KEPT:
            _DATES_SEEN.clear()
        seen = _DATES_SEEN[text] = _is_date(text)
    return seen


def is_time(text: str, with_time_zone: bool = False) -> bool:
    m = _TIME.match(text)
    if not m:
        return False
    hour, minute, second = int(m[1]), int(m[2]), int(m[3])
    return ((hour <= 23 and minute <= 59 and second <= 59)
            or (hour == 23 and minute == 59 and second == 60)) \
        and (not with_time_zone or bool(m[5]))


def is_date_time(text: str) -> bool:
    parts = _DATE_TIME_SEPARATOR.split(text)
    return len(parts) == 2 and is_date(parts[0]) and is_time(parts[1], True)


def is_uri(text: str) -> bool:
    return bool(_NOT_URI_FRAGMENT.search(text)) and bool(_URI.match(text))


def is_regex(text: str) -> bool:
    if _Z_ANCHOR.search(text):
        return False
    try:
        re.compile(text)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


def _matcher(pattern: re.Pattern) -> Callable[[str], bool]:
    return lambda text: pattern.match(text) is not None


FORMATS: dict[str, Callable[[str], bool]] = {
    "date": is_date,
    "time": is_time,
    "date-time": is_date_time,
    "duration": _matcher(_DURATION),
    "uri": is_uri,
    "uri-reference": _matcher(_URI_REFERENCE),
    "uri-template": _matcher(_URI_TEMPLATE),
    "url": _matcher(_URL),
    "email": _matcher(_EMAIL),
    "hostname": _matcher(_HOSTNAME),
    "ipv4": _matcher(_IPV4),
    "ipv6": _matcher(_IPV6),
    "regex": is_regex,
    "uuid": _matcher(_UUID),
    "json-pointer": _matcher(_JSON_POINTER),
    "json-pointer-uri-fragment": _matcher(_JSON_POINTER_FRAGMENT),
    "relative-json-pointer": _matcher(_RELATIVE_JSON_POINTER),
}
