# Production image: PostgreSQL and object storage are external (database.dsn, storage.*).
# Configure it with INGEST_<SECTION>_<KEY> variables at run time, e.g.
#   docker run -e INGEST_DATABASE_DSN=postgresql://… -e INGEST_STORAGE_BACKEND=s3 … ingest-server
# Secrets (jwt_secret, S3 keys, client hashes) are given at run time, never baked in here.
# Linted in CI by tests/test_dockerfile.py (hadolint and our own rules).

# Build stage: the compiler-free wheels go into a venv that is copied whole into the runtime.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY ingest_server ./ingest_server
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim-bookworm AS runtime
# A fixed numeric uid/gid: orchestrators (runAsNonRoot) can only verify a numeric user.
# --no-log-init: a high uid would otherwise make a huge sparse /var/log/lastlog.
RUN groupadd --system --gid 10001 ingest \
 && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /app ingest \
 && mkdir -p /app/data /app/plugins \
 && chown -R 10001:10001 /app/data
COPY --from=build /opt/venv /opt/venv
COPY config.toml /app/config.toml
COPY plugins /app/plugins
WORKDIR /app
# The only place the server writes (server.state_dir: the upload spool; and the embedded database
# if no INGEST_DATABASE_DSN is given, which serves one replica only). Plugins: mount a folder of
# *.py files over /app/plugins (read-only is fine), or point INGEST_SERVER_PLUGINS_DIR elsewhere.
VOLUME ["/app/data"]
USER 10001:10001
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INGEST_SERVER_HOST=0.0.0.0 \
    INGEST_SERVER_PORT=8080
EXPOSE 8080
# The probe reads the port the server reads, so INGEST_SERVER_PORT=9000 keeps it healthy.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; port = os.environ.get('INGEST_SERVER_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["ingest-server", "--config", "/app/config.toml"]
