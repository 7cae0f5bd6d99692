"""The files users run without us: docker-compose.yml and the Dockerfile."""

import base64
from pathlib import Path

import yaml

from stockflow.ops.config import load

ROOT = Path(__file__).resolve().parents[1]


def test_compose_defines_the_stack_with_kafka_in_kraft_mode():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "redis", "stockflow", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka
    assert services["redis"]["image"].startswith("redis:7")
    assert services["stockflow"]["build"] == "."


def test_compose_keeps_kafka_data_on_a_volume():
    """A broker that comes back empty under a recovery store that has read further would
    make stockflow refuse to start: its log dir lives on a named volume."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    log_dir = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert f"kafka-data:{log_dir}" in kafka["volumes"] and "kafka-data" in compose["volumes"]
    cluster_id = kafka["environment"]["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # a KRaft cluster id


def test_dockerfile_installs_every_package_folder():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("state", "connectors", "dataflows", "ops"):
        assert f"COPY {folder} {folder}" in dockerfile
    assert "pip install" in dockerfile


def test_compose_runs_stockflow_live_with_settings_it_understands():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    stockflow = services["stockflow"]
    assert stockflow["command"][:3] == ["run", "--config", "/etc/stockflow/stockflow.toml"]
    assert "./stockflow.toml:/etc/stockflow/stockflow.toml:ro" in stockflow["volumes"]
    env = {k: str(v) for k, v in stockflow["environment"].items()}
    config = load(str(ROOT / "stockflow.toml"), env)  # raises on any unknown setting
    kafka = services["kafka"]["environment"]
    assert f"PLAINTEXT://{config.kafka.brokers}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert config.redis.url.startswith("redis://redis:6379")
    assert config.recovery.dir.startswith("/data/")  # on the volume, so restarts resume
    metrics = f"{config.run.metrics_port}:{config.run.metrics_port}"
    assert metrics in stockflow["ports"]
    init = services["stockflow-init"]
    assert "topics create" in init["entrypoint"][-1] and "redis install" in init["entrypoint"][-1]
    assert stockflow["depends_on"]["stockflow-init"]["condition"] == (
        "service_completed_successfully")


def test_the_example_config_is_the_default_config():
    assert load(str(ROOT / "stockflow.toml"), {}) == load(None, {})
