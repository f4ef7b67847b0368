"""Which encoding a file that is not UTF-8 is probably in, from a sample of its first bytes.

A CSV sample is short text, where charset-normalizer alone guesses poorly (``Café`` comes out
cp1250, ``Привет`` cp1250 too). The usual cases are tried first, by what their text looks like:
cp1252 (what Excel writes in Western locales) when its non-ASCII letters sit inside words with
ASCII letters, as accents do; cp1251 when every non-ASCII letter is Cyrillic; then
charset-normalizer, kept to the encodings accepted for data files, when it recognises a
language; otherwise no name (rather than a wrong one).
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from .transcode import ALLOWED_ENCODINGS

_WORD = re.compile(r"[^\W\d_]+")
_PUNCT = set("€£¥°±§©®«»“”‘’–—…·×÷¼½¾²³µ¶ªº¿¡ \u00a0")


def _latin_text(text: str) -> bool:
    """Accented Latin: every non-ASCII character is a Latin letter or common punctuation, and
    words made only of non-ASCII letters (what mojibake of another script looks like) are
    rare."""
    mixed = pure = 0
    for ch in {c for c in text if ord(c) > 127}:
        if ch in _PUNCT:
            continue
        if not unicodedata.category(ch).startswith("L") or \
                not unicodedata.name(ch, "").startswith("LATIN"):
            return False
    for word in _WORD.findall(text):
        high = sum(ord(c) > 127 for c in word)
        if high == 0:
            continue
        if high == len(word) and len(word) > 2:
            pure += 1
        else:
            mixed += 1
    return mixed + pure > 0 and pure <= mixed // 4


def _script_text(text: str, script: str) -> bool:
    high = {c for c in text if ord(c) > 127} - _PUNCT
    return bool(high) and all(unicodedata.category(c).startswith("L")
                              and unicodedata.name(c, "").startswith(script) for c in high)


def _decoded(sample: bytes, encoding: str) -> str | None:
    try:
        return codecs.decode(sample, encoding)
    except UnicodeDecodeError:
        return None


def guess_encoding(sample: bytes) -> str | None:
    """The likely encoding of ``sample`` (not UTF-8), one of ``ALLOWED_ENCODINGS``; None when
    nothing fits well enough to be named (binary data, or too little text to tell)."""
    text = _decoded(sample, "cp1252")
    if text is not None and _latin_text(text):
        return "cp1252"
    text = _decoded(sample, "cp1251")
    if text is not None and _script_text(text, "CYRILLIC"):
        return "cp1251"
    try:
        from charset_normalizer import from_bytes  # noqa: PLC0415 - only on this rare path
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    for match in from_bytes(sample):
        if not match.coherence:  # no language recognised: a guess, not evidence
            continue
        try:
            name = codecs.lookup(match.encoding).name
        except LookupError:
            continue
        if name in ALLOWED_ENCODINGS and name not in ("ascii", "utf-8"):
            return name
    return None
