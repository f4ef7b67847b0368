"""cQube's answers, as plain data: the shapes its clients read (CQUBE.md §1).

Domain code: nothing here imports aiohttp. The web layer (``ingest_server.web.cqube``) decides
when to answer with these shapes (``compat.profile = "cqube"``).
"""
