"""``ingest``: the command-line client of ingest-server.

A synchronous client (httpx) that talks to the server's HTTP API only; it imports nothing from the
server's web layer, so it runs wherever the package is installed, against any ingest-server.
"""
