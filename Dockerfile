# Minimal image for the deskpulse daemon. Config is mounted, secrets come from the environment.
#   docker build -t deskpulse .
#   docker run -v $PWD/deskpulse.toml:/config/deskpulse.toml:ro -v deskpulse-data:/data \
#     -e DESKPULSE_SOURCES__0__API_TOKEN=... deskpulse
# Prometheus from outside the container: add -e DESKPULSE_DAEMON__LISTEN=0.0.0.0:9464 -p 9464:9464
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY connectors ./connectors
COPY kpi_engine ./kpi_engine
COPY sync ./sync
RUN pip install --no-cache-dir . && useradd --system --home /data deskpulse && mkdir -p /data && chown deskpulse /data
USER deskpulse
VOLUME ["/data"]
EXPOSE 9464
# /healthz ([daemon] listen, 127.0.0.1:9464 by default) is 503 when a source has not synced within
# healthy_within x sync_every or the scheduler died; urllib raises on it, so python exits 1. Python, not curl:
# the slim image has no curl. A changed listen port must be changed here too.
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=8)"]
# docker stop sends SIGTERM: the running page commits and the daemon exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["deskpulse", "--config", "/config/deskpulse.toml", "--db", "/data/deskpulse.db", "--log-format", "json"]
CMD ["daemon"]
