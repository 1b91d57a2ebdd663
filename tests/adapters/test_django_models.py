"""modelQuery, modelUpsert and modelDelete against the project's own models (pipelines.Connection, auth.User)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.django_models import ModelDeleteLoader, ModelQueryExtractor, ModelUpsertLoader
from pipelines.definition import parse
from pipelines.errors import ConfigError
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


@pytest.fixture
def allow(settings):
    settings.DATAHUB_MODEL_ALLOWLIST = ["pipelines.Connection", "auth.*"]
    return settings


@pytest.fixture
def connections(db):
    from pipelines.models import Connection

    rows = [("crm", "HTTP", "CRM API"), ("erp-db", "POSTGRES", "ERP"), ("shop-db", "MYSQL", "Shop"),
            ("stats", "POSTGRES", "Statistics"), ("cache", "REDIS", "Cache")]
    return [Connection.objects.create(code=c, type=t, name=n, config={"host": f"{c}.local"}) for c, t, n in rows]


def query(config: dict, **ctx) -> list[list[dict]]:
    return list(ModelQueryExtractor(config, AdapterContext(**ctx)).batches())


def write(cls, config: dict, *batches, **ctx):
    context = AdapterContext(**ctx)
    writer = cls(config, context)
    try:
        results = [writer.write(b) for b in batches]
        writer.finish()
        return results, context
    finally:
        writer.close()


def failures(result, key="code"):
    return [(record.get(key), message) for record, message in result.failed]


# --- the allow-list -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_refuses_every_model_until_the_allow_list_names_it(settings):
    settings.DATAHUB_MODEL_ALLOWLIST = []
    with pytest.raises(ConfigError, match="model 'pipelines.Connection' is not in DATAHUB_MODEL_ALLOWLIST "
                                          r"\(it is empty\); add 'pipelines.Connection'") as err:
        query({"model": "pipelines.Connection"})
    assert err.value.field == "model"
    settings.DATAHUB_MODEL_ALLOWLIST = ["auth.User"]
    with pytest.raises(ConfigError, match=r"not in DATAHUB_MODEL_ALLOWLIST \(auth.User\)"):
        write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["code"]}, [{"code": "x"}])


@pytest.mark.django_db
def test_it_never_exposes_the_secret_model(settings):
    settings.DATAHUB_MODEL_ALLOWLIST = ["pipelines.*"]
    with pytest.raises(ConfigError, match="model 'pipelines.Secret' cannot be used by a pipeline"):
        query({"model": "pipelines.Secret"})


@pytest.mark.django_db
def test_it_suggests_the_nearest_allowed_model(allow):
    with pytest.raises(ConfigError, match="no model 'pipelines.Conection'; did you mean 'pipelines.Connection'"):
        query({"model": "pipelines.Conection"})


# --- modelQuery ---------------------------------------------------------------------------------------------


def test_it_reads_objects_as_json_safe_records_in_batches(allow, connections):
    batches = query({"model": "pipelines.Connection", "orderBy": "code"}, batch_size=2)
    assert [len(b) for b in batches] == [2, 2, 1]
    first = batches[0][0]
    assert set(first) == {"id", "code", "name", "type", "config", "created_at", "updated_at"}
    assert first["code"] == "cache" and first["config"] == {"host": "cache.local"}
    assert isinstance(first["created_at"], str) and first["created_at"].startswith(str(connections[0].created_at.year))


@pytest.mark.parametrize("filters, codes", [
    ([{"field": "type", "value": "POSTGRES"}], ["erp-db", "stats"]),
    ([{"field": "type", "operator": "ne", "value": "POSTGRES"}], ["cache", "crm", "shop-db"]),
    ([{"field": "type", "operator": "in", "value": ["HTTP", "REDIS"]}], ["cache", "crm"]),
    ([{"field": "type", "operator": "notIn", "value": ["HTTP", "REDIS"]}], ["erp-db", "shop-db", "stats"]),
    ([{"field": "code", "operator": "contains", "value": "-db"}], ["erp-db", "shop-db"]),
    ([{"field": "code", "operator": "startswith", "value": "s"}], ["shop-db", "stats"]),
    ([{"field": "code", "operator": "gte", "value": "shop-db"}, {"field": "type", "operator": "lt", "value": "P"}],
     ["shop-db"]),
    ([{"field": "name", "operator": "isNull", "value": True}], []),
])
def test_it_filters_with_the_plugin_operators(allow, connections, filters, codes):
    [batch] = query({"model": "pipelines.Connection", "filters": filters, "fields": ["code"], "orderBy": ["code"]}) or [[]]
    assert [r["code"] for r in batch] == codes


def test_it_selects_fields_and_orders_descending(allow, connections):
    [batch] = query({"model": "pipelines.Connection", "fields": ["code", "type"], "orderBy": ["-type", "code"]})
    assert batch[:3] == [{"code": "cache", "type": "REDIS"}, {"code": "erp-db", "type": "POSTGRES"},
                         {"code": "stats", "type": "POSTGRES"}]


def test_it_stops_at_the_record_limit(allow, connections):
    assert [len(b) for b in query({"model": "pipelines.Connection"}, record_limit=3)] == [3]


@pytest.mark.parametrize("config, field, message", [
    ({"filters": [{"field": "tpye", "value": "HTTP"}]}, "filters.0.field",
     "'tpye' is not a field of pipelines.Connection; did you mean 'type'"),
    ({"fields": ["code", "nmae"]}, "fields.1", "did you mean 'name'"),
    ({"orderBy": "-creatd_at"}, "orderBy", "did you mean 'created_at'"),
    ({"filters": [{"field": "created_at", "operator": "gt", "value": "last tuesday"}]}, "filters.0.value",
     "filter on 'created_at': .*must be in YYYY-MM-DD HH:MM"),
    ({"filters": [{"field": "type", "operator": "in", "value": "HTTP"}]}, "filters.0.value", "takes a list"),
    ({"filters": [{"field": "config__host", "value": "x"}]}, "filters.0.field", "is not a field"),
])
def test_it_checks_field_names_and_values_before_querying(allow, connections, config, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        query({"model": "pipelines.Connection", **config})
    assert err.value.field == field


# --- modelUpsert --------------------------------------------------------------------------------------------


def test_it_upserts_creating_then_updating_by_the_lookup_fields(allow, db):
    from pipelines.models import Connection

    config = {"model": "pipelines.Connection", "lookupFields": ["code"]}
    [first], _ = write(ModelUpsertLoader, config, [{"code": "crm", "type": "HTTP", "config": {"baseUrl": "https://crm"}},
                                                   {"code": "erp", "type": "POSTGRES", "name": "ERP"}])
    assert (first.written, first.failed) == (2, [])
    crm = Connection.objects.get(code="crm")
    [second], _ = write(ModelUpsertLoader, config, [{"code": "crm", "name": "CRM"}])
    assert second.written == 1
    crm_after = Connection.objects.get(code="crm")
    assert crm_after.pk == crm.pk and crm_after.name == "CRM" and crm_after.config == {"baseUrl": "https://crm"}
    assert Connection.objects.count() == 2


def test_it_fails_a_record_that_does_not_validate_alone_with_its_fields_and_messages(allow, db):
    from pipelines.models import Connection

    [result], _ = write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["code"]}, [
        {"code": "good", "type": "HTTP"},
        {"code": "bad-type", "type": "NOPE"},
        {"code": "Bad Code!", "type": "HTTP", "name": {"en": "x"}},
        {"code": "also-good", "type": "SQLITE"},
    ])
    assert result.written == 2
    assert failures(result) == [
        ("bad-type", "type: Value 'NOPE' is not a valid choice."),
        ("Bad Code!", "name: takes a single value, got an object"),
    ]
    [again], _ = write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["code"]},
                       [{"code": "Bad Code!", "type": "HTTP"}])
    assert failures(again) == [("Bad Code!", "code: Use lower-case letters, digits, '-' and '_' (start with a letter "
                                             "or digit).")]
    assert sorted(Connection.objects.values_list("code", flat=True)) == ["also-good", "good"]


def test_it_fails_an_update_without_a_match_and_a_create_with_one(allow, db):
    from pipelines.models import Connection

    Connection.objects.create(code="crm", type="HTTP")
    [update], _ = write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["code"],
                                            "strategy": "UPDATE"}, [{"code": "crm", "name": "CRM"}, {"code": "zzz"}])
    assert failures(update) == [("zzz", "no Connection has code = 'zzz'")]
    [create], _ = write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["code"],
                                            "strategy": "CREATE"}, [{"code": "crm", "type": "HTTP"}, {"code": "new", "type": "HTTP"}])
    assert failures(create) == [("crm", "a Connection with code = 'crm' already exists")]
    [unique], _ = write(ModelUpsertLoader, {"model": "pipelines.Connection", "strategy": "CREATE"},
                        [{"code": "new", "type": "HTTP"}])
    assert failures(unique) == [("new", "code: Connection with this Code already exists.")]
    assert Connection.objects.get(code="crm").name == "CRM"


def test_it_coerces_record_values_with_the_plugin_rules(allow, db):
    from django.contrib.auth.models import User

    User.objects.create(username="ann", password="!", is_active=True)
    config = {"model": "auth.User", "lookupFields": ["username"]}
    [result], ctx = write(ModelUpsertLoader, config, [
        {"username": "ann", "is_active": "FALSE", "is_staff": "yes", "date_joined": "2024-03-04T05:06:07Z",
         "last_login": "", "nickname": "annie"},
        {"username": "bob", "email": "not-an-email"},
        {"username": "cy", "password": "!", "is_superuser": "maybe"},
    ])
    assert failures(result, "username") == [
        ("bob", "password: This field cannot be blank.; email: Enter a valid email address."),
        ("cy", "is_superuser: “maybe” value must be either True or False."),
    ]
    ann = User.objects.get(username="ann")
    assert (ann.is_active, ann.is_staff, ann.last_login) == (False, True, None)
    assert ann.date_joined.isoformat() == "2024-03-04T05:06:07+00:00"
    assert ctx.warnings == ["record keys that are not writable fields of auth.User are ignored: nickname"]


def test_it_maps_fields_from_record_paths(allow, db):
    from pipelines.models import Connection

    write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["code"],
                              "fieldMapping": {"code": "id", "type": "kind", "config": "settings"}},
          [{"id": "api", "kind": "HTTP", "settings": {"baseUrl": "https://api"}, "ignored": 1}])
    assert Connection.objects.filter(code="api", type="HTTP", config={"baseUrl": "https://api"}).exists()
    with pytest.raises(ConfigError, match="'cod' is not a field of pipelines.Connection; did you mean 'code'") as err:
        write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["cod"]}, [{"code": "x"}])
    assert err.value.field == "lookupFields.0"


def test_it_does_not_write_the_primary_key_unless_it_is_looked_up(allow, db):
    from pipelines.models import Connection

    other = Connection.objects.create(code="keep", type="HTTP")
    [result], ctx = write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["code"]},
                          [{"id": other.pk, "code": "new", "type": "HTTP"}])
    assert result.written == 1
    assert Connection.objects.get(pk=other.pk).code == "keep"
    assert "id" in ctx.warnings[0]
    [by_pk], _ = write(ModelUpsertLoader, {"model": "pipelines.Connection", "lookupFields": ["id"],
                                           "strategy": "UPDATE"}, [{"id": str(other.pk), "name": "Kept"}])
    assert by_pk.failed == [] and Connection.objects.get(pk=other.pk).name == "Kept"


# --- modelDelete --------------------------------------------------------------------------------------------


def test_it_deletes_the_one_matching_object_and_fails_records_that_match_none_or_several(allow, db):
    from pipelines.models import Connection

    for code, name in (("a", "same"), ("b", "same"), ("c", "other")):
        Connection.objects.create(code=code, type="HTTP", name=name)
    [by_code], _ = write(ModelDeleteLoader, {"model": "pipelines.Connection", "lookupFields": ["code"]},
                         [{"code": "c"}, {"code": "zzz"}])
    assert failures(by_code) == [("zzz", "no Connection has code = 'zzz'")]
    [by_name], _ = write(ModelDeleteLoader, {"model": "pipelines.Connection", "lookupFields": ["name"]},
                         [{"name": "same"}])
    assert [m for _, m in by_name.failed] == ["more than one Connection has name = 'same'; nothing deleted"]
    assert sorted(Connection.objects.values_list("code", flat=True)) == ["a", "b"]


# --- through the engine --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_runs_in_step_threads_through_the_executor(allow):
    """Steps run in threads with their own database connections, closed when the step ends."""
    from pipelines.models import Connection
    from runs.store import close_connections_after

    Connection.objects.create(code="old", type="HTTP")
    definition = {"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [
            {"code": "new", "type": "MYSQL"}, {"code": "broken", "type": "??"}, {"code": "old", "name": "Old"}]}},
        {"key": "save", "type": "LOAD", "adapterCode": "modelUpsert",
         "config": {"model": "pipelines.Connection", "lookupFields": ["code"]}},
        {"key": "read", "type": "EXTRACT", "adapterCode": "modelQuery",
         "config": {"model": "pipelines.Connection", "fields": ["code", "name", "type"], "orderBy": "code"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ], "edges": [{"from": "src", "to": "save"}, {"from": "save", "to": "read", "dependencyOnly": True},
                 {"from": "read", "to": "out"}]}
    store = InMemoryStore()
    result = execute(parse(definition), store, RunOptions(keep_outputs=True, thread_wrapper=close_connections_after))
    assert result.status == "COMPLETED", result.error
    assert [(e.step_key, e.record["code"], e.message) for e in store.record_errors()] == [
        ("save", "broken", "type: Value '??' is not a valid choice.")]
    assert result.output("out") == [{"code": "new", "name": "", "type": "MYSQL"},
                                    {"code": "old", "name": "Old", "type": "HTTP"}]


@pytest.mark.django_db(transaction=True)
def test_it_fails_the_step_when_the_model_is_not_allowed_through_a_saved_pipeline(settings):
    from pipelines.services import save_definition
    from runs import services

    settings.DATAHUB_MODEL_ALLOWLIST = ["auth.Group"]
    pipeline = save_definition({"version": 1, "code": "users", "name": "Users", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "modelQuery", "config": {"model": "auth.User"}}]})
    outcome = services.run_now(services.create_run(pipeline))
    assert outcome.run.status == "FAILED"
    step = outcome.run.step_runs.get(step_key="src")
    assert "model 'auth.User' is not in DATAHUB_MODEL_ALLOWLIST (auth.Group)" in step.error


def test_it_imports_the_adapters_without_django():
    code = ("import sys; import pipelines.adapters.django_models, pipelines.adapters.database, "
            "pipelines.adapters.sqlconn; bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
