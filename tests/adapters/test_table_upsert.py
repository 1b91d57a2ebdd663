"""The `tableUpsert` loader against real SQLite, PostgreSQL and MariaDB (fixtures: test_database.py)."""

from __future__ import annotations

import pytest

from pipelines.adapters.database import TableUpsertLoader
from pipelines.errors import ConfigError
from runs.engine.store import InMemoryStore
from tests.adapters import test_database as shared
from tests.adapters.test_database import qi, run_definition

# The fixtures shared with test_database.py: each module gets its own scratch databases.
pg_database, mysql_database = shared.pg_database, shared.mysql_database
target, statements = shared.target, shared.statements


def load(target, config: dict, *batches: list[dict], **ctx):
    """Write each batch with one loader; the WriteResults."""
    writer = TableUpsertLoader({"connectionCode": target.code, **config}, target.ctx(**ctx))
    try:
        results = [writer.write(batch) for batch in batches]
        writer.finish()
        return results
    finally:
        writer.close()


def products(target):
    """sku is unique: UPSERT uses the database's own upsert."""
    target.create("products", f"{target.auto_pk}, sku VARCHAR(40) NOT NULL UNIQUE, name VARCHAR(100) NOT NULL, "
                              "price NUMERIC(10,2), qty INTEGER, active BOOLEAN")


def items(target):
    """No unique index: UPSERT updates, then inserts when no row matched."""
    target.create("items", "sku VARCHAR(40), name VARCHAR(100), qty INTEGER")


def all_products(target):
    return target.rows("SELECT sku, name, price, qty, active FROM products ORDER BY sku")


def failures(result):
    return [(record.get("sku"), message) for record, message in result.failed]


def test_it_upserts_creating_then_updating_rows(target, statements):
    products(target)
    [first] = load(target, {"table": "products", "lookupFields": ["sku"]},
                   [{"sku": "A", "name": "Chair", "price": 10, "qty": 1, "active": True},
                    {"sku": "B", "name": "Table", "price": "99.90", "qty": "2", "active": "false"}])
    assert (first.written, first.failed) == (2, [])
    [second] = load(target, {"table": "products", "lookupFields": ["sku"]},
                    [{"sku": "A", "name": "Armchair", "qty": 5}, {"sku": "C", "name": "Lamp"}])
    assert (second.written, second.failed) == (2, [])
    assert all_products(target) == [("A", "Armchair", 10.0, 5, 1), ("B", "Table", 99.9, 2, 0),
                                    ("C", "Lamp", None, None, None)]
    upserts = [sql for method, sql in statements if method == "executemany"]
    assert upserts and all(("ON CONFLICT" in sql or "ON DUPLICATE KEY" in sql) for sql in upserts)


def test_it_upserts_by_update_then_insert_without_a_unique_index(target):
    items(target)
    [result] = load(target, {"table": "items", "lookupFields": ["sku"]},
                    [{"sku": "X", "qty": 1}, {"sku": "X", "qty": 2}, {"sku": "Y", "name": "y", "qty": 3}])
    assert (result.written, result.failed) == (3, [])
    load(target, {"table": "items", "lookupFields": ["sku"]}, [{"sku": "X", "name": "x"}, {"sku": "Z"}])
    assert target.rows("SELECT sku, name, qty FROM items ORDER BY sku") == [
        ("X", "x", 2), ("Y", "y", 3), ("Z", None, None)]


def test_it_fails_only_the_duplicate_record_with_create(target):
    products(target)
    load(target, {"table": "products", "strategy": "CREATE"}, [{"sku": "A", "name": "Chair"}])
    [result] = load(target, {"table": "products", "strategy": "CREATE"},
                    [{"sku": "B", "name": "Table"}, {"sku": "A", "name": "Chair again"}, {"sku": "C", "name": "Lamp"},
                     {"sku": "C", "name": "Lamp twice"}])
    assert result.written == 2
    assert [sku for sku, _ in failures(result)] == ["A", "C"]
    message = failures(result)[0][1].lower()
    assert "duplicate" in message or "unique" in message
    assert [r[:2] for r in all_products(target)] == [("A", "Chair"), ("B", "Table"), ("C", "Lamp")]


def test_it_checks_for_an_existing_row_with_create_when_no_unique_index_does(target):
    items(target)
    target.insert("items", [{"sku": "X", "qty": 1}])
    [result] = load(target, {"table": "items", "strategy": "CREATE", "lookupFields": ["sku"]},
                    [{"sku": "X", "qty": 2}, {"sku": "Y", "qty": 3}, {"sku": "Y", "qty": 4}])
    assert failures(result) == [("X", "a row with sku = 'X' already exists in 'items'"),
                                ("Y", "a row with sku = 'Y' already exists in 'items'")]
    assert target.rows("SELECT sku, qty FROM items ORDER BY sku") == [("X", 1), ("Y", 3)]


def test_it_fails_the_update_of_a_missing_row(target):
    products(target)
    target.insert("products", [{"sku": "A", "name": "Chair", "qty": 1}])
    [result] = load(target, {"table": "products", "lookupFields": ["sku"], "strategy": "UPDATE"},
                    [{"sku": "A", "qty": 7}, {"sku": "Z", "qty": 9}, {"sku": "A"}])
    assert result.written == 2
    assert failures(result) == [("Z", "no row in 'products' with sku = 'Z'")]
    assert all_products(target) == [("A", "Chair", None, 7, None)]


def test_it_deletes_the_matching_rows_and_fails_a_record_that_matches_none(target):
    products(target)
    target.insert("products", [{"sku": "A", "name": "Chair"}, {"sku": "B", "name": "Table"}])
    [result] = load(target, {"table": "products", "lookupFields": ["sku"], "strategy": "DELETE"},
                    [{"sku": "A", "name": "ignored"}, {"sku": "Z"}])
    assert result.written == 1
    assert failures(result) == [("Z", "no row in 'products' with sku = 'Z'")]
    assert [r[0] for r in all_products(target)] == ["B"]


def test_it_fails_a_record_that_breaks_not_null_alone(target):
    products(target)
    [result] = load(target, {"table": "products", "lookupFields": ["sku"]},
                    [{"sku": "A", "name": "Chair"}, {"sku": "B", "name": None}, {"sku": "C"}, {"sku": "D", "name": "Desk"}])
    assert result.written == 2
    assert [sku for sku, _ in failures(result)] == ["B", "C"]
    for _, message in failures(result):
        assert "name" in message and ("null" in message.lower() or "default" in message.lower())
    assert [r[0] for r in all_products(target)] == ["A", "D"]


def test_it_fails_a_record_without_its_lookup_value(target):
    products(target)
    [result] = load(target, {"table": "products", "lookupFields": ["sku"]}, [{"name": "no sku"}, {"sku": None, "name": "x"}])
    assert [m for _, m in failures(result)] == ["lookup field 'sku' is missing or null"] * 2


def test_it_coerces_values_to_the_column_types_and_fails_what_cannot_be_coerced(target):
    products(target)
    [result] = load(target, {"table": "products", "lookupFields": ["sku"]}, [
        {"sku": "A", "name": {"en": "Chair"}, "qty": "12", "price": "9.90", "active": "TRUE"},
        {"sku": "B", "name": "Table", "qty": "twelve"},
        {"sku": "C", "name": "Lamp", "qty": 1.5},
        {"sku": "D", "name": "Desk", "active": "maybe"},
        {"sku": "E", "name": "Stool", "qty": "", "active": 0},
        {"sku": 7, "name": 8.5},
    ])
    assert failures(result) == [
        ("B", "column 'qty' (integer) takes a whole number, got 'twelve'" if target.kind != "mysql"
         else "column 'qty' (int) takes a whole number, got 'twelve'"),
        ("C", f"column 'qty' ({'int' if target.kind == 'mysql' else 'integer'}) takes a whole number, got 1.5"),
        ("D", f"column 'active' ({ {'mysql': 'tinyint', 'postgres': 'boolean', 'sqlite': 'boolean'}[target.kind] }) "
              "takes true or false, got 'maybe'"),
    ]
    assert all_products(target) == [("7", "8.5", None, None, None), ("A", '{"en": "Chair"}', 9.9, 12, 1),
                                    ("E", "Stool", None, None, 0)]


def test_it_maps_columns_from_record_paths_and_warns_once_about_unknown_keys(target):
    products(target)
    ctx_warnings: list[str] = []
    writer = TableUpsertLoader({"connectionCode": "shop", "table": "products", "lookupFields": ["sku"]},
                               target.ctx(warnings=ctx_warnings))
    try:
        writer.write([{"sku": "A", "name": "Chair", "colour": "red"}])
        writer.write([{"sku": "B", "name": "Table", "size": 3}])
    finally:
        writer.close()
    assert ctx_warnings == ["record keys that are not columns of 'products' are ignored: colour"]
    [result] = load(target, {"table": "products", "lookupFields": ["sku"],
                             "fieldMapping": {"sku": "code", "name": "title.en", "qty": "stock.0.qty"}},
                    [{"code": "C", "title": {"en": "Lamp"}, "stock": [{"qty": 4}]}, {"code": "A", "title": {}}])
    assert result.failed == []
    assert [r[:4] for r in all_products(target)] == [("A", "Chair", None, None), ("B", "Table", None, None),
                                                     ("C", "Lamp", None, 4)]


@pytest.mark.parametrize("config, field, message", [
    ({"table": "prodcuts", "lookupFields": ["sku"]}, "table", "table 'prodcuts' does not exist in connection 'shop'.*did you mean 'products'"),
    ({"table": "products; DROP TABLE products", "strategy": "CREATE"}, "table",
     r"table 'products; DROP TABLE products' does not exist in connection 'shop'.*\(tables: .*products"),
    ({"table": "products", "lookupFields": ["skuu"]}, "lookupFields.0", "column 'skuu' does not exist in table "
                                                                       "'products'; did you mean 'sku'"),
    ({"table": "products", "lookupFields": ["sku"], "fieldMapping": {"sku = '' --": "sku"}},
     "fieldMapping.sku = '' --", "column \"sku = '' --\" does not exist|column 'sku = '' --' does not exist"),
])
def test_it_checks_names_against_the_catalogue_before_writing_anything(target, statements, config, field, message):
    products(target)
    with pytest.raises(ConfigError, match=message) as err:
        load(target, config, [{"sku": "A", "name": "Chair"}])
    assert err.value.field == field
    assert not [sql for _, sql in statements if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "DROP"))]
    assert all_products(target) == []


def test_it_quotes_names_with_spaces_quotes_backticks_and_percent_signs(target):
    weird = ["code", "unit price", 'say "hi"', "back`tick", "pct %"]
    table = 'price "list"' if target.kind != "mysql" else "price list"
    target.create(table, f"{qi(target.kind, weird[0])} VARCHAR(10) NOT NULL UNIQUE, "
                         f"{qi(target.kind, weird[1])} NUMERIC(10,2), {qi(target.kind, weird[2])} VARCHAR(20), "
                         f"{qi(target.kind, weird[3])} VARCHAR(20), {qi(target.kind, weird[4])} INTEGER")
    config = {"table": table, "lookupFields": ["code"]}
    load(target, config, [{"code": "a", "unit price": 1.5, 'say "hi"': "hello", "back`tick": "`", "pct %": 10}])
    load(target, config, [{"code": "a", "pct %": 20}, {"code": "b", 'say "hi"': "'); DROP TABLE x; --"}])
    cols = ", ".join(qi(target.kind, c) for c in weird)
    assert target.rows(f"SELECT {cols} FROM {qi(target.kind, table)} ORDER BY 1") == [
        ("a", 1.5, "hello", "`", 20), ("b", None, "'); DROP TABLE x; --", None, None)]


def test_it_records_failed_records_and_passes_the_rest_on_through_the_executor(target):
    products(target)
    records = [{"sku": f"S-{i:04d}", "name": f"Item {i}" if i % 1000 != 7 else None} for i in range(2500)]
    steps = [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}},
        {"key": "load", "type": "LOAD", "adapterCode": "tableUpsert",
         "config": {"connectionCode": "shop", "table": "products", "lookupFields": ["sku"]}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ]
    result, store = run_definition(target, steps)
    assert result.status == "COMPLETED", result.error
    errors = store.record_errors()
    assert [(e.step_key, e.record["sku"]) for e in errors] == [("load", "S-0007"), ("load", "S-1007"), ("load", "S-2007")]
    assert all("name" in e.message for e in errors)
    assert len(result.output("out")) == 2497
    assert target.rows("SELECT count(*) FROM products") == [(2497,)]


def test_it_fails_the_step_on_a_wrong_table_without_retrying(target):
    products(target)
    steps = [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"sku": "A", "name": "x"}]}},
        {"key": "load", "type": "LOAD", "adapterCode": "tableUpsert", "retries": 2,
         "config": {"connectionCode": "shop", "table": "product", "lookupFields": ["sku"]}},
    ]
    result, store = run_definition(target, steps)
    assert result.status == "FAILED"
    finished = store.finished()["load"]
    assert finished.attempts == 1
    assert "table 'product' does not exist" in finished.error and "did you mean 'products'" in finished.error


def test_it_writes_nothing_in_a_dry_run(target):
    products(target)
    steps = [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"sku": "A", "name": "x"}]}},
        {"key": "load", "type": "LOAD", "adapterCode": "tableUpsert",
         "config": {"connectionCode": "shop", "table": "products", "lookupFields": ["sku"]}},
    ]
    result, _ = run_definition(target, steps, InMemoryStore(), dry_run=True)
    assert result.status == "COMPLETED"
    assert all_products(target) == []


def test_it_needs_lookup_fields_except_to_create(target):
    with pytest.raises(ConfigError, match="lookupFields is required for strategy UPSERT"):
        TableUpsertLoader({"connectionCode": "shop", "table": "products"}, target.ctx())


@pytest.mark.django_db(transaction=True)
def test_it_loads_through_a_connection_row_and_a_saved_pipeline(tmp_path, settings):
    import sqlite3

    from pipelines.models import Connection
    from pipelines.services import save_definition
    from runs import services
    from runs.models import RecordError

    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL)")
    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path)]
    Connection.objects.create(code="shop", type="SQLITE", config={"path": str(db)})
    pipeline = save_definition({"version": 1, "code": "sql-load", "name": "SQL load", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
         "config": {"data": [{"sku": "A", "name": "Chair"}, {"sku": "B"}]}},
        {"key": "load", "type": "LOAD", "adapterCode": "tableUpsert",
         "config": {"connectionCode": "shop", "table": "products", "lookupFields": ["sku"]}}]})
    outcome = services.run_now(services.create_run(pipeline))
    assert outcome.run.status == "COMPLETED", outcome.run.error
    [error] = RecordError.objects.filter(run=outcome.run)
    assert (error.step_key, error.record) == ("load", {"sku": "B"})
    assert "NOT NULL constraint failed: products.name" in error.message
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT sku, name FROM products").fetchall() == [("A", "Chair")]
