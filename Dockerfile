# Minimal image for the deskpulse daemon. Config is mounted, secrets come from the environment.
#   docker build -t deskpulse .
#   docker run -v $PWD/deskpulse.toml:/config/deskpulse.toml:ro -v deskpulse-data:/data \
#     -e DESKPULSE_SOURCES__0__API_TOKEN=... deskpulse
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
# docker stop sends SIGTERM: the running page commits and the daemon exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["deskpulse", "--config", "/config/deskpulse.toml", "--db", "/data/deskpulse.db", "--log-format", "json"]
CMD ["daemon"]
