FROM python:3.11-slim
WORKDIR /srv/ops
COPY setup.cfg pyproject.toml README.md ./
COPY ops ./ops
COPY sql ./sql
RUN pip install --no-cache-dir . && useradd --system ops
USER ops
CMD ["ops", "--help"]
