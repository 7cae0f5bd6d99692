"""Baseline: row-lock allocation in PostgreSQL, the way Saleor and Medusa allocate stock.

One transaction per order line: lock the SKU's stock rows (SELECT ... FOR UPDATE), choose the
node with the most on hand that fills the line, decrement it, insert the allocation, commit.
Every run works in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import secrets

import psycopg
from psycopg import sql

from .settings import BenchSettings
from .workload import Line, Workload, allocated_units, check_books, replay, summary

DEFAULT_DSN = BenchSettings().postgres

# The schema an ORM would generate: a positive quantity, a foreign key from the allocation.
_TABLES = """
CREATE TABLE stock (
    id serial PRIMARY KEY,
    sku text NOT NULL,
    node text NOT NULL,
    quantity integer NOT NULL CHECK (quantity >= 0),
    UNIQUE (sku, node)
);
CREATE TABLE allocation (
    id bigserial PRIMARY KEY,
    order_id text NOT NULL,
    line_id text NOT NULL,
    stock_id integer NOT NULL REFERENCES stock (id),
    quantity integer NOT NULL CHECK (quantity > 0)
);
CREATE INDEX ON allocation (stock_id);
"""

# Locking in id order means two transactions on one SKU never wait on each other in a
# cycle: no deadlocks, only queueing.
_LOCK = "SELECT id, node, quantity FROM stock WHERE sku = %s ORDER BY id FOR UPDATE"
_TAKE = "UPDATE stock SET quantity = quantity - %s WHERE id = %s"
_RECORD = "INSERT INTO allocation (order_id, line_id, stock_id, quantity) VALUES (%s, %s, %s, %s)"
_BOOKS = """
SELECT s.sku, s.node, s.quantity, coalesce(sum(a.quantity), 0)
FROM stock s LEFT JOIN allocation a ON a.stock_id = s.id
GROUP BY s.id
"""


def run_rowlock(workload: Workload, clients: int, dsn: str = DEFAULT_DSN,
                limit_lines: int | None = None) -> dict:
    """Allocates the workload's lines (the first `limit_lines`) with `clients` connections;
    returns throughput, latency, outcomes and whether the books balance."""
    lines = workload.lines[:limit_lines]
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        try:
            _create(admin, schema, workload.stock)
            run = replay(lines, clients, lambda: _connect(dsn, schema), _allocate)
            consistent = _check(admin, workload.stock, run.placed)
        finally:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                          .format(sql.Identifier(schema)))
    return summary("postgres-rowlock", clients, run, consistent)


def _allocate(conn: psycopg.Connection, line: Line) -> str | None:
    order_id, line_id, sku, qty = line
    with conn.transaction():
        chosen = _most_on_hand(conn.execute(_LOCK, (sku,)).fetchall(), qty)
        if chosen is None:
            return None  # the empty transaction still commits, releasing the locks
        stock_id, node = chosen
        conn.execute(_TAKE, (qty, stock_id))
        conn.execute(_RECORD, (order_id, line_id, stock_id, qty))
    return node


def _most_on_hand(rows: list[tuple[int, str, int]], qty: int) -> tuple[int, str] | None:
    """The row with the most on hand that covers `qty`; ties go to the lowest node."""
    best = None
    for stock_id, node, on_hand in rows:
        if on_hand >= qty and (best is None or on_hand > best[2]):
            best = (stock_id, node, on_hand)
    return None if best is None else (best[0], best[1])


def _connect(dsn: str, schema: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}")


def _create(admin: psycopg.Connection, schema: str, stock: dict[tuple[str, str], int]) -> None:
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    admin.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    admin.execute(_TABLES)
    with admin.cursor().copy("COPY stock (sku, node, quantity) FROM STDIN") as copy:
        for (sku, node), qty in sorted(stock.items()):
            copy.write_row((sku, node, qty))
    admin.execute("ANALYZE stock")


def _check(admin: psycopg.Connection, initial: dict, placed: list) -> bool:
    """The database's books balance, and they agree with what the clients were told."""
    remaining, allocated = {}, {}
    for sku, node, quantity, units in admin.execute(_BOOKS):
        remaining[sku, node] = quantity
        if units:
            allocated[sku, node] = units
    assert allocated == dict(allocated_units(placed)), "clients and database disagree"
    return check_books(initial, remaining, allocated)
