"""Live-mode settings: a TOML file, then `STOCKFLOW_*` environment variables over it.

`STOCKFLOW_<SECTION>_<KEY>` sets `[section] key` (`STOCKFLOW_KAFKA_BROKERS=k1:9092`);
`STOCKFLOW_KAFKA_CLIENT_<NAME>` sets a Kafka client property, `_` read as `.`
(`STOCKFLOW_KAFKA_CLIENT_SASL_MECHANISM=PLAIN` -> `sasl.mechanism`). A bad setting is one
readable `ConfigError` line naming it: the file, or the environment variable that set it.
"""

from __future__ import annotations

import copy
import os
import tomllib
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from stockflow.state.config import EngineConfig

from .masking import remember_client, remember_url


class ConfigError(Exception):
    pass


class KafkaSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    brokers: str = "127.0.0.1:9092"
    topic_prefix: str = "stockflow."  # inputs <prefix>orders|stock|master, outputs <prefix><stream>
    # `stockflow topics create`: partitions of every topic but <prefix>master (one)
    partitions: Annotated[int, Meta(ge=1)] = 3
    replication: Annotated[int, Meta(ge=1)] = 1
    batch_size: Annotated[int, Meta(ge=1)] = 2000  # messages read per partition per poll
    # The sink gives up on a broker that acknowledges nothing this long, and the flow stops
    # (the next start resumes from the last snapshot and writes the outputs again).
    delivery_timeout_s: Annotated[float, Meta(gt=0)] = 30.0
    client: dict[str, str] = {}  # librdkafka properties: SASL, TLS, acks, compression...


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    url: str = "redis://127.0.0.1:6379/0"  # rediss:// for TLS; user:password@ for AUTH
    # Redis Cluster: `url` names any one node; keys take the cluster layout (redis_keys.py).
    cluster: bool = False
    prefix: str = "sf"
    heartbeat_stale_s: Annotated[float, Meta(gt=0)] = 5.0  # reserve refuses past this
    timeout_s: Annotated[float, Meta(gt=0)] = 1.0


class RecoverySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dir: str = "recovery"  # created on first start
    snapshot_interval_s: Annotated[float, Meta(gt=0)] = 10.0
    backup_interval_s: Annotated[float, Meta(ge=0)] = 0.0


class RunSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # An input partition quiet this long gets a `clock.tick` (0: none are written), so the
    # clock moves and holds expire on time without new events.
    clock_tick_s: Annotated[float, Meta(ge=0)] = 1.0
    # A partition the event-time merge waits on (or will: it has shown nothing past the newest
    # event held) gets a tick after this many ms; more writes fewer ticks, waits longer...
    tick_waited_ms: Annotated[int, Meta(ge=1)] = 5
    # ...and after this long without one it is passed over: what it brings later is late.
    idle_wait_s: Annotated[float, Meta(gt=0)] = 5.0
    metrics_port: Annotated[int, Meta(ge=0, le=65535)] = 9464  # 0: no /metrics
    # Where /metrics and the read API listen: every interface by default (a container's port
    # mapping needs it); 127.0.0.1 keeps inventory positions off the host's public ones.
    metrics_host: str = "0.0.0.0"
    # With Redis: how often the engine asks which SKUs' checkout holds changed (a grant, a
    # release, an expiry), to take them in and publish availability that counts them.
    checkout_poll_ms: Annotated[int, Meta(ge=1)] = 10
    # An input event stamped more than this after its Kafka record was written is refused, a
    # dead letter `ts_ahead`: a producer's clock far ahead, or a placeholder date.
    max_ahead_s: Annotated[float, Meta(gt=0)] = 300.0


LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]


class LogSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    level: LogLevel = "info"  # `stockflow run --log-level` overrides it
    format: LogFormat = "text"  # text: logfmt `key=value` lines; json: one object per line


# Live mode defaults to 8 ledger buckets, not the replay's 64. Buckets cap how many worker
# processes can share the state, and are fixed for the life of a recovery store: a new store
# takes at least two per process (ops/recovery.py), so its cluster can double. (8 once cut
# latency, when every bucket in a batch cost two Redis round trips; they are per batch now,
# and 64 buckets measured the same latency as 8.)
LIVE_BUCKETS = 8


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    engine: EngineConfig = EngineConfig(buckets=LIVE_BUCKETS)
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    recovery: RecoverySettings = RecoverySettings()
    run: RunSettings = RunSettings()
    log: LogSettings = LogSettings()


SECTIONS = ("engine", "kafka", "redis", "recovery", "run", "log")


def load(path: str | None, environ: dict[str, str] | None = None) -> Config:
    """The file's settings (if any) with the environment's over them."""
    raw: dict = {} if path is None else read_toml(path, "config", ConfigError)
    where = f" in {path}" if path else ""
    _convert(raw, f"bad setting{where}")  # the file's own mistakes are the file's
    variables = {name: value for name, value in (os.environ if environ is None
                                                 else environ).items()
                 if name.startswith("STOCKFLOW_")}
    for name in sorted(variables):  # then each variable's, named (never its value: a secret)
        _convert(_overlay_environment(copy.deepcopy(raw), {name: variables[name]}),
                 f"bad setting in the environment: {name}")
    config = _convert(_overlay_environment(raw, variables), f"bad setting{where}")
    remember_url(config.redis.url)  # masked in every message and log line from now on
    remember_client(config.kafka.client)
    return config


def _convert(raw: dict, what: str) -> Config:
    # An [engine] table (or one STOCKFLOW_ENGINE_* variable) that does not name the buckets
    # keeps live mode's default, not the engine's: buckets are fixed for a recovery store.
    if "engine" in raw:
        raw["engine"].setdefault("buckets", LIVE_BUCKETS)
    try:
        return msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def read_toml(path: str, what: str, error: type[Exception]) -> dict:
    """A TOML file's tables; `error` with one readable line if it cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} is not valid TOML: {exc}") from None


def _overlay_environment(raw: dict, environ) -> dict:
    for name, value in environ.items():
        if not name.startswith("STOCKFLOW_"):
            continue
        rest = name[len("STOCKFLOW_"):].lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS or not key:
            raise ConfigError(f"unknown setting {name} (sections: {', '.join(SECTIONS)})")
        table = raw.setdefault(section, {})
        if section == "kafka" and key.startswith("client_"):
            table.setdefault("client", {})[key[len("client_"):].replace("_", ".")] = value
        else:
            table[key] = value
    return raw
