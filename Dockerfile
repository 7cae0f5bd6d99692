FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY state state
COPY connectors connectors
COPY dataflows dataflows
COPY ops ops
RUN pip install --no-cache-dir .
ENTRYPOINT ["stockflow"]
CMD ["run", "--config", "/etc/stockflow/stockflow.toml"]
