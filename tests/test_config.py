"""Live-mode settings: TOML, environment over it, and one readable line for a bad one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stockflow.ops.config import ConfigError, load


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[kafka]\nbrokers = "a:1"\npartitions = 6\n[redis]\nprefix = "x"\n')
    config = load(str(path), {"STOCKFLOW_KAFKA_BROKERS": "b:2", "STOCKFLOW_ENGINE_BUCKETS": "8",
                              "STOCKFLOW_KAFKA_CLIENT_SASL_MECHANISM": "PLAIN"})
    assert config.kafka.brokers == "b:2"
    assert config.kafka.partitions == 6
    assert config.engine.buckets == 8
    assert config.kafka.client == {"sasl.mechanism": "PLAIN"}
    assert config.redis.prefix == "x"


def test_redis_cluster_from_the_file_or_the_environment(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[redis]\nurl = "redis://10.0.0.1:7000"\ncluster = true\n')
    assert load(str(path), {}).redis.cluster is True
    assert load(str(path), {"STOCKFLOW_REDIS_CLUSTER": "false"}).redis.cluster is False
    assert load(None, {"STOCKFLOW_REDIS_CLUSTER": "true"}).redis.cluster is True
    assert load(None, {}).redis.cluster is False  # one Redis unless told


@pytest.mark.parametrize("text, env, says", [
    ("", {"STOCKFLOW_REDIS_CLUSTER": "maybe"}, "$.redis.cluster"),
    ("[kafka]\npartitions = 0\n", {}, "$.kafka.partitions"),
    ("[kafka]\nbrokerz = 'x'\n", {}, "unknown field `brokerz`"),
    ("[kafka\n", {}, "not valid TOML"),
    ("", {"STOCKFLOW_ENGINE_BUCKETS": "many"}, "$.engine.buckets"),
    ("", {"STOCKFLOW_KAFKABROKERS": "x"}, "unknown setting STOCKFLOW_KAFKABROKERS"),
    ("[log]\nlevel = 'loud'\n", {}, "$.log.level"),
    ("", {"STOCKFLOW_LOG_FORMAT": "xml"}, "$.log.format"),
])
def test_a_bad_setting_names_itself(tmp_path, text, env, says):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(str(path), env)
    assert says in str(err.value)


@pytest.mark.parametrize("args, env", [
    (["run", "--config", "/nonexistent.toml"], {}),
    (["run"], {"STOCKFLOW_RUN_CLOCK_TICK_S": "soon"}),
    (["topics", "create"], {"STOCKFLOW_KAFKA_PARTITIONS": "-1"}),
])
def test_the_cli_answers_a_bad_config_with_one_line(args, env):
    proc = subprocess.run([sys.executable, "-m", "stockflow.ops.cli", *args],
                          env={**os.environ, **env}, capture_output=True, timeout=60)
    assert proc.returncode == 1
    err = proc.stderr.decode().strip()
    assert err.startswith("stockflow: error: ") and "\n" not in err, err


@pytest.mark.parametrize("env, says", [
    ({"STOCKFLOW_KAFKA_BROKER": "x"}, "STOCKFLOW_KAFKA_BROKER: Object contains unknown field "
                                      "`broker`"),
    ({"STOCKFLOW_RUN_METRICS_PORT": "abc"}, "STOCKFLOW_RUN_METRICS_PORT: Expected `int`"),
])
def test_a_mistyped_variable_is_named_not_blamed_on_the_file(tmp_path, env, says):
    path = tmp_path / "s.toml"
    path.write_text("[kafka]\nbrokers = 'k:9092'\n")
    with pytest.raises(ConfigError) as err:
        load(str(path), {**env, "STOCKFLOW_REDIS_URL": "redis://u:s3cretpw@h:6379/0"})
    message = str(err.value)
    assert message.startswith("bad setting in the environment: ") and says in message
    assert str(path) not in message and "abc" not in message and "s3cretpw" not in message


def test_an_engine_setting_alone_keeps_live_modes_buckets():
    config = load(None, {"STOCKFLOW_ENGINE_INBOUND_HORIZON_S": "3600"})
    assert (config.engine.buckets, config.engine.inbound_horizon_s) == (8, 3600)


def test_log_settings_come_from_the_file_and_the_environment(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[log]\nlevel = "warning"\n')
    config = load(str(path), {"STOCKFLOW_LOG_FORMAT": "json"})
    assert (config.log.level, config.log.format) == ("warning", "json")
    assert (load(None, {}).log.level, load(None, {}).log.format) == ("info", "text")
