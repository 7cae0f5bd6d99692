"""No credential leaves in any output: a password planted in the Redis URL and the Kafka
client properties is looked for in everything `run`, `inspect`, `redis install` and `api`
print, in their log lines (text and JSON), and in the HTTP API's error answers. A real Redis
(an ACL user of the test's own) and a real broker."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest
import redis

from stockflow.ops.config import load
from stockflow.ops.logs import JsonFormatter, LogfmtFormatter
from stockflow.ops.masking import mask, masked_client, masked_url

from .live_runs import LiveRun
from .servers import free_port, unique_prefix
from .test_api import get, until


@pytest.fixture()
def user(redis_url):
    """An ACL user with a password of its own, removed afterwards: (name, password)."""
    client = redis.Redis.from_url(redis_url)
    name, password = f"sf-mask-{uuid.uuid4().hex[:8]}", f"s3cret-{uuid.uuid4().hex}"
    client.acl_setuser(name, enabled=True, passwords=[f"+{password}"], keys=["*"],
                       commands=["+@all"])
    yield name, password
    client.acl_deluser(name)


def _url(redis_url: str, name: str, password: str) -> str:
    where = urlsplit(redis_url)
    return f"redis://{name}:{password}@{where.hostname}:{where.port}{where.path or '/0'}"


def _cli(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stockflow.ops.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_a_wrong_password_is_masked_in_every_message_and_log_line(kafka_brokers, redis_url,
                                                                   user, tmp_path):
    name, _ = user
    wrong, kafka_secret = f"wr0ng-{uuid.uuid4().hex}", f"k4fka-{uuid.uuid4().hex}"
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics({})
    env = {**run.env, "STOCKFLOW_REDIS_URL": _url(redis_url, name, wrong),
           "STOCKFLOW_KAFKA_CLIENT_SASL_PASSWORD": kafka_secret}
    said = {
        "run": _cli(env, "run", "--drain"),
        "run json": _cli(env, "run", "--drain", "--log-format", "json"),
        "inspect": _cli(env, "inspect", "SKU-1"),
        "redis install": _cli(env, "redis", "install"),
        "api": _cli(env, "api", "--port", str(free_port())),
    }
    for command, done in said.items():
        out = done.stdout + done.stderr
        assert done.returncode == 1, (command, out)
        assert wrong not in out and kafka_secret not in out, (command, out)
        assert f"redis://{name}:***@" in out, (command, out)  # said, with the secret masked
    assert "event=refused" in said["run"].stderr and '"event":"refused"' in said["run json"].stderr


def test_the_api_masks_its_start_line_and_its_error_answers(kafka_brokers, redis_url, user):
    name, password = user
    env = {"PATH": "/usr/bin:/bin", "STOCKFLOW_REDIS_URL": _url(redis_url, name, password),
           "STOCKFLOW_REDIS_PREFIX": unique_prefix().rstrip(".")}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "stockflow.ops.cli", "api", "--port",
                             str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: get(port, "/v1/health")[0], what="api")
        admin = redis.Redis.from_url(redis_url)
        admin.acl_setuser(name, reset_passwords=True, passwords=["+another"])  # locked out
        admin.execute_command("CLIENT", "KILL", "USER", name)
        time.sleep(0.2)
        status, body = get(port, "/v1/skus/SKU-1/availability")
        assert status == 503 and "cannot read the read model" in body["error"], body
        assert password not in str(body)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    err = proc.stderr.read()
    assert password not in err and f"redis://{name}:***@" in err, err


def test_a_library_message_that_repeats_a_secret_is_masked_in_logs_and_errors(caplog):
    secret = f"s3cret-{uuid.uuid4().hex}"
    load(None, {"STOCKFLOW_REDIS_URL": f"redis://app:{secret}@h:6379/0",
                "STOCKFLOW_KAFKA_CLIENT_SASL_PASSWORD": secret + "-k"})
    text = f"auth failed for app/{secret} (sasl.password={secret}-k)"
    assert secret not in mask(text) and mask(text).count("***") == 2
    record = logging.LogRecord("stockflow.x", logging.ERROR, "", 0, "refused", (), None)
    record.error, record.url = text, f"rediss://:{secret}@h:6380"
    for formatter in (LogfmtFormatter(), JsonFormatter()):
        assert secret not in formatter.format(record)
    assert masked_url("redis://app:pw@h:1/0") == "redis://app:***@h:1/0"
    assert masked_url("redis://h:1/0") == "redis://h:1/0"
    assert masked_client({"sasl.password": "x", "sasl.mechanism": "PLAIN"}) == {
        "sasl.password": "***", "sasl.mechanism": "PLAIN"}
