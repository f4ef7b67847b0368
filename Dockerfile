# Production image: PostgreSQL and object storage are external (database.dsn, storage.*).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY ingest_server ./ingest_server
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app ingest \
 && mkdir -p /app/data /app/plugins \
 && chown -R ingest /app/data
COPY --from=build /opt/venv /opt/venv
COPY config.toml /app/config.toml
COPY plugins /app/plugins
WORKDIR /app
USER ingest
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    INGEST_SERVER_HOST=0.0.0.0 \
    INGEST_SERVER_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["ingest-server", "--config", "/app/config.toml"]
