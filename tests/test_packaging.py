"""The files users run without us: docker-compose.yml and the Dockerfile."""

from pathlib import Path

import yaml

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


def test_dockerfile_installs_every_package_folder():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("state", "connectors", "dataflows", "ops"):
        assert f"COPY {folder} {folder}" in dockerfile
    assert "pip install" in dockerfile
