# The ops image: `docker build -t panoramax-ops .`, then `docker run --rm -e DB_URL panoramax-ops ops db status`.
# Built in two stages: the wheel is built in the first, only it is installed in the second (no build tools
# left in the image). It runs as a non-root user; its health check is `ops health` (a warning is healthy).
# Debian's PostgreSQL client is in it for `ops db plan` (pg_dump of the server's major version or newer: 17 on
# Debian 13; with an older base and a newer server, the plan says which one it needs).
FROM python:3.11-slim AS build
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY ops ./ops
COPY sql ./sql
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist .

FROM python:3.11-slim
# The version is ops/__init__.py's, passed by `make image` (docker build --build-arg VERSION=…): written once.
ARG VERSION=unknown
# ops runs with the identity of the picture files it deletes: Panoramax's image runs as uid 1000 (its
# `useradd --uid 1000 geovisio`); another deployment passes its own (docker build --build-arg OPS_UID=…).
ARG OPS_UID=1000
ARG OPS_GID=1000
LABEL org.opencontainers.image.title="panoramax-ops" \
      org.opencontainers.image.description="Migrations and operations toolkit for a Panoramax instance's database and picture storage" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.url="https://panoramax.fr"
COPY --from=build /dist/*.whl /tmp/
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && groupadd --gid "${OPS_GID}" ops && useradd --uid "${OPS_UID}" --gid "${OPS_GID}" --no-create-home ops
USER ops
WORKDIR /tmp
HEALTHCHECK --interval=5m --timeout=60s --start-period=30s \
    CMD ops -q health --timeout 30 || [ $? -eq 1 ]
CMD ["ops", "--help"]
