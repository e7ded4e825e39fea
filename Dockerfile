# One image, three commands: `imagegen operator`, `imagegen gateway`, `imagegen worker`.
# It cannot be built on the project's machines (no registry serves base images there);
# tests/unit/test_dockerfile.py lints it with hadolint instead.

# Build stage: install the package and its dependencies into a virtualenv, so the final
# stage copies one folder and carries no pip cache, compiler or source tree.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/imagegen
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/imagegen/bin/pip install --no-cache-dir -c operator/constraints.txt .

FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/imagegen/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# A fixed numeric non-root user, as the chart's runAsUser and Pod Security `restricted`
# expect; no home, no shell.
RUN groupadd --system --gid 10001 imagegen \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin imagegen
COPY --from=build /opt/imagegen /opt/imagegen
USER 10001:10001
# The root filesystem is read-only in the chart; /tmp is an emptyDir there.
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["imagegen"]
CMD ["--help"]
