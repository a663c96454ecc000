ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    CAREERBOT_DATA_DIR=/data \
    CAREERBOT_CONFIG=/app/config.toml

RUN python3 -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir . && rm -rf /root/.cache

COPY config.example.toml ./
COPY samples ./samples
RUN cp config.example.toml config.toml \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent careerbot \
    && mkdir -p /data && chown careerbot /data

USER careerbot
VOLUME /data
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 \
    CMD ["careerbot", "health"]
CMD ["careerbot", "run"]
