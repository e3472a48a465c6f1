# syntax=docker/dockerfile:1
# ilagent as a container: `docker run IMAGE daemon …` takes the same arguments as the command
# `ilagent daemon …`; the SQLite spool file lives in the volume /var/lib/ilagent.
#
#   docker build -t ilagent .
#   docker run -p 8977:8977 -v ilagent-spool:/var/lib/ilagent ilagent daemon -p 8977 …
#
# Releases pin the base image by digest as well as by tag, so a rebuild gets the same bytes:
#   docker build --build-arg PYTHON_DIGEST=sha256:… -t ilagent:<version> .
# (`docker buildx imagetools inspect python:<PYTHON_TAG>` prints the digest of the tag).
# The install steps below are run as they stand by tests/deploy/test_dockerfile.py.

ARG PYTHON_TAG=3.11.14-slim-bookworm
# empty: the tag alone (development builds); a sha256:… digest at release
ARG PYTHON_DIGEST=

FROM python:${PYTHON_TAG}${PYTHON_DIGEST:+@${PYTHON_DIGEST}} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# ilagent's wheel and a wheel of every dependency: the image installs from these alone
ARG WHEELS=/wheels
RUN python -m pip wheel --no-cache-dir --wheel-dir "$WHEELS" .

FROM python:${PYTHON_TAG}${PYTHON_DIGEST:+@${PYTHON_DIGEST}}
LABEL org.opencontainers.image.title="ilagent" \
      org.opencontainers.image.description="Bridge Apache Kafka, MQTT and HTTP to ilert alerts" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/ilagent/bin:$PATH
ARG WHEELS=/wheels
ARG VENV=/opt/ilagent
# the wheels are mounted from the build stage, never copied: no layer keeps them
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv "$VENV" \
 && "$VENV/bin/pip" install --no-cache-dir --no-index --find-links "$WHEELS" "$WHEELS"/ilagent-*.whl \
 && "$VENV/bin/ilagent" --version
# a fixed numeric user, so Kubernetes' runAsNonRoot can verify it without a name lookup
RUN useradd --system --no-log-init --uid 10001 --user-group --home-dir /var/lib/ilagent \
        --create-home --shell /usr/sbin/nologin ilagent
WORKDIR /var/lib/ilagent
# the default spool file ./ilagent.db3 (-f) is here: keep it across restarts and upgrades
VOLUME ["/var/lib/ilagent"]
USER 10001:10001
EXPOSE 8977
# with -p: /health must answer 204; without: healthy while the daemon runs (see the module)
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ilagent.healthcheck"]
ENTRYPOINT ["ilagent"]
