"""The benchmark results as a table (terminal and Markdown) and a plot (PNG)."""

from __future__ import annotations

from pathlib import Path


def _cpu(run: dict) -> str:
    """The engine's CPU per order line, where the run measured it."""
    return f" ({run['cpu_us_per_line']} CPU µs/line)" if "cpu_us_per_line" in run else ""


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """(what, throughput, latency, versus) rows, in the order a reader wants them."""
    live = r["live"]
    ratio = r["ratios"]
    out = [
        ("stockflow live, 1 process (Kafka + Redis)",
         f"{live['one_process']['order_lines_per_s']:,} lines/s"
         f"{_cpu(live['one_process'])}", "",
         f"{ratio['stockflow_vs_passthrough']}x passthrough"),
        ("stockflow live, 2 processes",
         f"{live['two_processes']['order_lines_per_s']:,} lines/s"
         f"{_cpu(live['two_processes'])}", "",
         f"{ratio['two_vs_one_process']}x 1 process"),
        ("bare passthrough (decode + encode)",
         f"{live['passthrough']['order_lines_per_s']:,} lines/s", "", ""),
        ("stockflow replay (file in, files out)",
         f"{r['replay']['events_per_s']:,} events/s", "", ""),
    ]
    for level in live["latency_under_load"]:
        out.append((f"stockflow at {int(level['load'] * 100)}% of max "
                    f"({level['order_lines_per_s']:,} lines/s, {level['rate']:,} events/s)",
                    "", f"p50 {level['p50_ms']} ms, p99 {level['p99_ms']} ms", ""))
    for traffic, skus, holds, grant, release, topic in staleness_rows(live.get("staleness")):
        out.append((f"checkout hold -> published availability, {skus} SKUs, other traffic: "
                    f"{traffic} ({holds} holds)", "",
                    f"grant p50/p99 {grant} ms (Redis), {topic} ms (topic); "
                    f"release {release} ms", ""))
    for name, key, ratio_key in (("PostgreSQL row locks", "postgres_rowlock",
                                  "stockflow_vs_postgres_rowlock"),
                                 ("naive Redis (Lua per line)", "naive_redis",
                                  "stockflow_vs_naive_redis")):
        best = max(r["alternatives"][key], key=lambda x: x["lines_per_s"])
        out.append((f"{name}, best of {len(r['alternatives'][key])} client counts "
                    f"({best['clients']} clients)", f"{round(best['lines_per_s']):,} lines/s",
                    f"p50 {best['p50_ms']} ms, p99 {best['p99_ms']} ms",
                    f"stockflow = {ratio[ratio_key]}x"))
    for res in r["reservations"]:
        out.append((f"reservation API, {res['clients']} clients",
                    f"{res['holds_per_s']:,} holds/s", f"p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms", ""))
    s = r["state"]
    out.append((f"state at {s['entries']:,} SKU x node",
                f"{s['memory_bytes_per_entry']} B/entry in memory, {s['snapshot_bytes_per_entry']} B in snapshots",
                f"snapshot {s['snapshot_s']} s, restore {s['restore_s']} s", ""))
    return out


def markdown(r: dict) -> str:
    lines = ["| what | throughput | latency | versus |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(r)]
    return "\n".join(lines)


def print_table(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"stockflow bench ({r['workload']['events']:,} events, "
                        f"{r['workload']['order_lines']:,} order lines)")
    for col in ("what", "throughput", "latency", "versus"):
        table.add_column(col)
    for row in rows(r):
        table.add_row(*row)
    Console().print(table)


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    live = r["live"]
    systems = {
        "stockflow\n1 process": live["one_process"]["order_lines_per_s"],
        "stockflow\n2 processes": live["two_processes"]["order_lines_per_s"],
        "passthrough": live["passthrough"]["order_lines_per_s"],
        "PostgreSQL\nrow locks": max(x["lines_per_s"] for x in r["alternatives"]["postgres_rowlock"]),
        "naive Redis\nLua per line": max(x["lines_per_s"] for x in r["alternatives"]["naive_redis"]),
    }
    left.bar(list(systems), list(systems.values()), color="#4477aa")
    left.set_ylabel("order lines / s")
    left.set_title("Throughput (same workload, same run)")
    loads = live["latency_under_load"]
    right.plot([x["load"] * 100 for x in loads], [x["p99_ms"] for x in loads], "o-", label="p99")
    right.plot([x["load"] * 100 for x in loads], [x["p50_ms"] for x in loads], "s--", label="p50")
    right.set_xlabel("load (% of measured max order lines/s)")
    right.set_ylabel("event -> command latency (ms)")
    right.set_title("stockflow latency under load")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scale_rows(r: dict) -> list[tuple[str, str]]:
    """(what, figure) rows of `stockflow bench --scale`: what was measured, then the plan."""
    one, two = r["live"]["one_process"], r["live"]["two_processes"]
    hot_run, uniform, hot = (r["live"]["two_processes_hot_sku"], r["stages"]["uniform"],
                             r["stages"]["hot_sku"])
    p = r["plan"]
    share = int(r["hot_sku_share"] * 100)
    return [
        ("engine CPU per order line, 1 / 2 processes",
         f"{one['cpu_us_per_line']} / {two['cpu_us_per_line']} µs"),
        (f"engine CPU per order line, 2 processes, one SKU {share}% of lines",
         f"{hot_run['cpu_us_per_line']} µs ({hot_run['order_lines_per_s']:,} vs "
         f"{two['order_lines_per_s']:,} lines/s)"),
        ("Redis per order line (1 process)",
         f"{one['redis_commands_per_line']} commands, {one['redis_cpu_us_per_line']} CPU µs"),
        ("sequencer (merge + route, one worker)",
         f"{uniform['sequencer_us_per_event']} µs/event = "
         f"{uniform['sequencer_events_per_s']:,} events/s at most"),
        (f"busiest of {hot['buckets']} buckets' share of ledger work, uniform / hot SKU",
         f"{uniform['busiest_bucket_share']:.0%} / {hot['busiest_bucket_share']:.0%}"),
        (f"plan for {p['peak_orders_per_s']:,} orders/s ({p['peak_lines_per_s']:,} lines/s, "
         f"{p['peak_events_per_s']:,} events/s)",
         f"{p['engine_processes']:,} engine processes, {p['redis_cores']} Redis cores, "
         f"{p['kafka_input_mb_per_s']} MB/s into Kafka"),
        ("where it stops: sequencers needed / hot bucket ceiling",
         f"{p['sequencers_needed']} (1 today) / {p['hot_bucket_ceiling_lines_per_s']:,} lines/s"),
    ]


def print_scale(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"stockflow bench --scale ({r['workload']['events']:,} events)")
    table.add_column("what")
    table.add_column("measured")
    for row in scale_rows(r):
        table.add_row(*row)
    Console().print(table)


def print_floor(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"stockflow bench --latency-floor ({r['workload']['events']:,} events)")
    for column in ("events/s", "paced", "p50 ms", "p99 ms", "max ms", "clock ticks written"):
        table.add_column(column)
    for run in r["latency_floor"]:
        table.add_row(f"{run['achieved_rate']:,}", f"{run['events']:,}", str(run["p50_ms"]),
                      str(run["p99_ms"]), str(run["max_ms"]), f"{run['clock_ticks']:,}")
    Console().print(table)


def staleness_rows(r: dict | None) -> list[tuple[str, ...]]:
    """(traffic, SKUs, holds, grant -> read model p50/p99, release -> read model p50/p99,
    grant -> availability topic p50/p99), from `bench --staleness` or the full bench."""
    rows = []
    if r is None:  # results of a version that did not measure it
        return rows
    for traffic, label in (("idle", "none"), ("under_load", f"{r['load']:.0%} of max")):
        for kind, skus in (("quiet_sku", "no traffic of their own"),
                           ("busy_sku", "the most ordered")):
            x = r[traffic].get(kind)
            if not x or not x.get("holds"):
                continue
            topic = x.get("availability_topic", {}).get("grant_to_topic_ms", {})
            release = x.get("release_to_read_model_ms")
            rows.append((label, skus, str(x["holds"]), _pair(x["grant_to_read_model_ms"]),
                         _pair(release) if release else "-", _pair(topic) if topic else "-"))
    return rows


def _pair(p: dict) -> str:
    return f"{p.get('p50')} / {p.get('p99')}"


def print_staleness(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"stockflow bench --staleness ({r['workload']['events']:,} events): "
                        "checkout hold -> published availability, ms p50 / p99")
    for column in ("other traffic", "SKUs", "holds", "grant -> Redis", "release -> Redis",
                   "grant -> availability topic"):
        table.add_column(column)
    for row in staleness_rows(r):
        table.add_row(*row)
    Console().print(table)
