# The cx-timeline image: the wheel and its dependencies on a pinned Python, run as a
# non-root user.  One image for every process; the command says which:
#   docker run cx-timeline worker | dashboard | summaries | webhooks run | simulate ...
# docker-compose.yml builds and uses it.  Kafka and Redis come from their own images.

# Pinned by version: the tag names one Python release on one Debian release.  Pin it by
# digest too (`python:3.11.7-slim-bookworm@sha256:...`) where your registry is reachable
# to look the digest up.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY . .
# The project's wheel and every dependency's, so the final stage installs offline.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 --user-group cxt
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels cx-timeline \
    && rm -rf /wheels
USER cxt
WORKDIR /home/cxt
ENV PYTHONUNBUFFERED=1 \
    CXT_STATE_DIR=/home/cxt/state \
    CXT_DASHBOARD_HOST=0.0.0.0
# 8080 dashboard, 9101 worker metrics, 9102 webhook metrics.
EXPOSE 8080 9101 9102
# The default command is the worker: healthy while its /metrics answers.  Other
# processes set their own check (docker-compose.yml does).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('CXT_WORKER_METRICS_PORT', '9101'), timeout=4)"]
ENTRYPOINT ["cxt"]
CMD ["worker"]
