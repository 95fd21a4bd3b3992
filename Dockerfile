# One image for every function (docs/deploy.md): each Knative Service picks its
# function with FUNCTION_TARGET / FUNCTION_SOURCE, and the migration Job runs
# `alembic upgrade head` from the same image. Nothing here depends on which function runs.
#
#   task image:push REGISTRY=registry.example.com TAG=1.2.3    (docker build, docs/deploy.md)
#   ./taskw image       (buildah, on a Debian base made with mmdebstrap: BASE=that image)

# Any Debian-based image with Python 3.11+ as `python3` (and its venv module) will do. The
# default is the official one; ./taskw image passes a local Debian bookworm one
# (tools/image/base.py), whose python3 is the same 3.11.
ARG BASE=python:3.11-slim-bookworm

# --- build: a virtualenv with the dependencies ---------------------------------------
FROM ${BASE} AS deps

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build

# Only pyproject.toml: this layer (and the slow install below) is rebuilt when the
# dependencies change, not when the code does. The image installs [project] dependencies
# and nothing else: the tools' packages (embedded servers, the task binary, the CLI's
# libraries) are the `local` extra, which only ./taskw installs.
COPY pyproject.toml ./
# --only-binary: every dependency ships wheels, so nothing is compiled and no compiler is
# needed in either stage; a dependency without a wheel fails the build instead of
# silently pulling in a toolchain. The secrets are the building machine's pip settings
# (index, proxy, CA bundle: tools/image/pip_config.py); a build without them uses pip's
# defaults, and no layer keeps them. pip and setuptools leave the virtualenv afterwards:
# nothing at run time installs anything.
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=pip-cert \
    python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
    && PIP_CONFIG_FILE=/run/secrets/pip.conf pip install --no-cache-dir --only-binary=:all: --requirement requirements.txt \
    && pip uninstall --yes --quiet pip setuptools

# --- runtime: the virtualenv and the code, as a non-root user --------------------------
FROM ${BASE}

# A numeric user, so the kubelet can check runAsNonRoot (the manifests set it).
RUN groupadd --system --gid 10001 saga \
    && useradd --system --no-log-init --uid 10001 --gid saga --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin saga

COPY --from=deps /opt/venv /opt/venv

# The code is not pip-installed: FUNCTION_SOURCE paths (functions/<name>/main.py) are
# relative to /app, and PYTHONPATH=/app makes the same files importable as
# `common...` / `functions...`, so there is exactly one copy of each module.
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY common ./common
COPY functions ./functions

# TMPDIR: nothing a function runs writes to the image's filesystem, so it also runs with
# readOnlyRootFilesystem. The one temporary file is gunicorn's worker heartbeat (the api),
# and /dev/shm, the tmpfs every container runtime mounts, is where gunicorn's documentation
# puts it (a heartbeat on a disk-backed layer can block the worker).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/dev/shm
# Bytecode compiled now, into root-owned files: faster cold starts, nothing to write later.
RUN python -m compileall -q /app

USER 10001:10001
EXPOSE 8080
# common/serving/serve.py reads what functions-framework reads (FUNCTION_TARGET, FUNCTION_SOURCE,
# FUNCTION_SIGNATURE_TYPE, FUNCTION_USE_ASGI, and PORT set by Knative): every event function
# is served by uvicorn in this one process, THREADS events at once (common/serving/event_server.py);
# the api by functions-framework's own server, gunicorn with one worker of THREADS threads.
CMD ["python", "-m", "common.serving"]
