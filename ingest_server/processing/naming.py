"""cQube's dataset table names (CQUBE-PROCESSING.md §2.3): the hash H and the names of the single
and compound dataset tables, so cQube's query-builder (and its static ``table_names.json``) find
the tables we write."""

from __future__ import annotations

import base64

# cQube's time grains, in the order it creates them (CSA:77).
GRAINS = ("Daily", "Weekly", "Monthly", "Yearly")
_FOLD = 15


def cqube_hash(name: str) -> str:
    """cQube's ``hash.ts``: XOR-fold the UTF-8 bytes into 15 bytes, base64 (20 characters, no
    padding), then ``+`` → ``__`` and ``/`` → ``_``."""
    folded = bytearray(_FOLD)
    for i, byte in enumerate(name.encode("utf-8")):
        folded[i % _FOLD] ^= byte
    text = base64.b64encode(bytes(folded)).decode("ascii").rstrip("=")
    return text.replace("+", "__").replace("/", "_")


def single_name(namespace: str, metric: str, dimension: str, grain: str | None) -> str:
    """``<ns>_<metric>_<T>_<dim>``, or ``<ns>_<metric>_<dim>`` without a time dimension."""
    if grain is None:
        return f"{namespace}_{metric}_{dimension}"
    return f"{namespace}_{metric}_{grain}_{dimension}"


def compound_expanded(namespace: str, event: str, dimensions: tuple[str, ...],
                      grain: str | None) -> str:
    """``<ns>_<evt>_<T>_<d1>0<d2>0…<dn>`` (``<ns>_<evt>_<d1>0…`` without a time dimension)."""
    joined = "0".join(dimensions)
    if grain is None:
        return f"{namespace}_{event}_{joined}"
    return f"{namespace}_{event}_{grain}_{joined}"


def compound_table(namespace: str, event: str, expanded: str) -> str:
    """The physical name of a compound dataset: ``<ns>_<evt>_<H(expanded)>``."""
    return f"{namespace}_{event}_{cqube_hash(expanded)}"


def physical(name: str) -> str:
    """The name PostgreSQL stores for cQube's unquoted identifier: lower-cased."""
    return name.lower()
