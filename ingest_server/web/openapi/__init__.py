"""The OpenAPI document (the source of the API reference): ``document`` builds it from
``routes`` (which view answers which path), ``schemas`` (the shared JSON schemas) and the
operations of ``ops``, ``resumable`` and ``processing``."""
