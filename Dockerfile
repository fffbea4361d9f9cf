# Production image: one image for every process; the compose file picks `web`, `worker` or `beat`.
# Base images are pinned to a patch release; bump them deliberately.
FROM python:3.12.8-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY tracker ./tracker
COPY webhooks ./webhooks
COPY workers ./workers
# The versions the test suite last passed with (constraints.txt), not whatever is newest on the day of the build.
RUN pip wheel --constraint constraints.txt --wheel-dir /wheels .


FROM python:3.12.8-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    TRACKER_BIND=0.0.0.0:8000

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels satisfaction-tracker \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/tracker tracker

# A writable home for the process; celery beat keeps its schedule and heartbeat in /tmp.
WORKDIR /var/lib/tracker
USER tracker

EXPOSE 8000
ENTRYPOINT ["tracker"]
CMD ["web"]
