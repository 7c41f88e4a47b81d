"""tenants.context.tenant_context: nesting, restoring on exit and on exceptions,
the database setting following the Python context, and failing closed outside
any context (the scoped manager raises NoTenantContext, the database shows no
rows). Also what `.unscoped()` and `all_tenants` mean on the app connection."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import DatabaseError, connection, connections

from tenants.context import NoTenantContext, current_tenant_id, require_tenant_id, tenant_context
from tenants.database.tenant_setting import read_tenant_setting, set_tenant_setting
from tenants.models import CrossTenantWrite, User
from tests.support.factories import TradeFactory, UserFactory
from trading.models import Position, Trade

pytestmark = pytest.mark.django_db


def raw_count(table: str = "trades") -> int:
    queries = {"trades": "SELECT count(*) FROM trades", "users": "SELECT count(*) FROM users"}
    with connection.cursor() as cursor:
        cursor.execute(queries[table])
        return cursor.fetchone()[0]


def state() -> tuple[uuid.UUID | None, str | None]:
    """(the Python context, the database setting) as seen right now."""
    return current_tenant_id(), read_tenant_setting(connection)


def unset(value: str | None) -> bool:
    return value in (None, "")


@pytest.fixture
def data(user_a, user_b):
    """3 trades of acme, 2 of globex."""
    for _ in range(3):
        TradeFactory(user=user_a)
    for _ in range(2):
        TradeFactory(user=user_b)
    return {"a": user_a.tenant, "b": user_b.tenant}


# --- the context and the setting --------------------------------------------------


def test_outside_any_context_there_is_no_tenant(db):
    assert current_tenant_id() is None
    assert unset(read_tenant_setting(connection))
    with pytest.raises(NoTenantContext):
        require_tenant_id()


def test_context_sets_the_variable_and_the_database_setting(tenant_a):
    with tenant_context(tenant_a) as tenant_id:
        assert tenant_id == tenant_a.pk
        assert state() == (tenant_a.pk, str(tenant_a.pk))
        assert require_tenant_id() == tenant_a.pk
        assert connection.in_atomic_block
    assert current_tenant_id() is None
    assert unset(read_tenant_setting(connection))


@pytest.mark.parametrize("form", ["model", "uuid", "str"])
def test_context_accepts_a_tenant_a_uuid_or_a_string(form, tenant_a):
    tenant = {"model": tenant_a, "uuid": tenant_a.pk, "str": str(tenant_a.pk)}[form]
    with tenant_context(tenant) as tenant_id:
        assert tenant_id == tenant_a.pk
        assert isinstance(tenant_id, uuid.UUID)
        assert state() == (tenant_a.pk, str(tenant_a.pk))


def test_nesting_restores_the_previous_tenant_on_exit(data):
    a, b = data["a"], data["b"]
    with tenant_context(a):
        assert state() == (a.pk, str(a.pk))
        assert raw_count() == 3
        with tenant_context(b):
            assert state() == (b.pk, str(b.pk))
            assert raw_count() == 2
            assert Trade.objects.count() == 2
            with tenant_context(a):
                assert state() == (a.pk, str(a.pk))
                assert raw_count() == 3
            assert state() == (b.pk, str(b.pk))
            assert raw_count() == 2
        assert state() == (a.pk, str(a.pk))
        assert raw_count() == 3
        assert Trade.objects.count() == 3
    assert current_tenant_id() is None
    assert unset(read_tenant_setting(connection))
    assert raw_count() == 0


def test_nesting_the_same_tenant_keeps_it(data):
    a = data["a"]
    with tenant_context(a):
        with tenant_context(a):
            assert state() == (a.pk, str(a.pk))
        assert state() == (a.pk, str(a.pk))
        assert raw_count() == 3


def test_nesting_restores_the_previous_tenant_on_an_exception(data):
    a, b = data["a"], data["b"]
    with tenant_context(a):
        with pytest.raises(ZeroDivisionError):
            with tenant_context(b):
                assert state() == (b.pk, str(b.pk))
                1 / 0  # noqa: B018
        assert state() == (a.pk, str(a.pk))
        assert raw_count() == 3
    assert current_tenant_id() is None
    assert unset(read_tenant_setting(connection))


def test_an_exception_in_the_outermost_context_leaves_no_tenant(data):
    with pytest.raises(KeyError), tenant_context(data["a"]):
        raise KeyError("boom")
    assert current_tenant_id() is None
    assert unset(read_tenant_setting(connection))
    assert raw_count() == 0


def test_an_exception_rolls_back_the_blocks_writes(user_a):
    with pytest.raises(RuntimeError), tenant_context(user_a.tenant):
        Trade.objects.create(user=user_a, symbol="AAPL", side="buy", quantity=1, price=1)
        assert Trade.objects.count() == 1
        raise RuntimeError("undo")
    with tenant_context(user_a.tenant):
        assert Trade.objects.count() == 0


def test_a_caught_database_error_inside_a_context_rolls_the_block_back(data, user_a):
    """The aborted transaction is detected on exit: the block rolls back (with its
    writes and its setting) instead of the next query failing or a tenant leaking."""
    a, b = data["a"], data["b"]
    with tenant_context(a):
        with tenant_context(b):
            Trade.objects.create(user=User.objects.first(), symbol="ZZZ", side="buy", quantity=1, price=1)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1 / 0")
            except DatabaseError:
                pass  # swallowed: the transaction is now aborted
        assert state() == (a.pk, str(a.pk))
        assert raw_count() == 3
    with tenant_context(b):
        assert Trade.objects.filter(symbol="ZZZ").count() == 0
        assert Trade.objects.count() == 2
    assert unset(read_tenant_setting(connection))


def test_the_context_is_per_thread(tenant_a):
    seen = {}

    def other_thread():
        seen["tenant"] = current_tenant_id()
        try:
            require_tenant_id()
        except NoTenantContext:
            seen["raised"] = True

    with tenant_context(tenant_a):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert current_tenant_id() == tenant_a.pk
    assert seen == {"tenant": None, "raised": True}


def test_the_database_setting_is_transaction_local(tenant_a):
    """On a connection of its own (not the test's transaction): the setting
    ends with the transaction that made it, committed or not."""
    conn = connections.create_connection("default")
    try:
        set_tenant_setting(conn, tenant_a.pk)  # autocommit: a transaction of its own
        assert unset(read_tenant_setting(conn))
        conn.set_autocommit(False)
        set_tenant_setting(conn, tenant_a.pk)
        assert read_tenant_setting(conn) == str(tenant_a.pk)
        conn.commit()
        assert unset(read_tenant_setting(conn))
        set_tenant_setting(conn, tenant_a.pk)
        conn.rollback()
        assert unset(read_tenant_setting(conn))
    finally:
        conn.close()


def test_with_rls_disabled_the_context_sets_no_database_setting(settings, tenant_a):
    settings.RLS_ENABLED = False
    with tenant_context(tenant_a):
        assert current_tenant_id() == tenant_a.pk
        assert unset(read_tenant_setting(connection))


# --- failing closed without a context -----------------------------------------------


def test_scoped_managers_raise_without_a_context(data):
    with pytest.raises(NoTenantContext):
        Trade.objects.count()
    with pytest.raises(NoTenantContext):
        list(Trade.objects.filter(symbol="AAPL"))
    with pytest.raises(NoTenantContext):
        User.objects.first()
    with pytest.raises(NoTenantContext):
        Position.objects.exists()
    with pytest.raises(NoTenantContext, match="No tenant context"):
        Trade.objects.get(pk=uuid.uuid4())


def test_none_needs_no_context(db):
    assert list(Trade.objects.none()) == []


def test_raw_sql_without_a_context_sees_no_rows_and_raises_nothing(data):
    with tenant_context(data["a"]):
        assert raw_count() == 3
        assert raw_count("users") == 1
    assert raw_count() == 0
    assert raw_count("users") == 0


def test_a_lazy_queryset_evaluated_after_its_context_sees_nothing(data):
    """The manager's filter is fixed when the queryset is built, but the rows come
    from the database when it is evaluated: outside the context RLS shows none."""
    with tenant_context(data["a"]):
        built_inside = Trade.objects.all()
    assert list(built_inside) == []
    with pytest.raises(NoTenantContext):
        Trade.objects.all()


def test_saving_a_new_row_without_tenant_or_context_raises(user_a):
    with pytest.raises(NoTenantContext):
        Trade(user=user_a, symbol="AAPL", side="buy", quantity=1, price=1).save()
    with tenant_context(user_a.tenant):
        assert Trade.objects.count() == 0


# --- unscoped() and all_tenants --------------------------------------------------------


def test_unscoped_and_all_tenants_add_no_filter_but_rls_still_holds(data):
    """On the app connection neither reaches past RLS: one tenant inside a context,
    nothing outside one (and no exception: they are not the fail-closed manager)."""
    assert Trade.objects.unscoped().count() == 0
    assert Trade.all_tenants.count() == 0
    assert User.objects.unscoped().count() == 0
    assert User.all_tenants.count() == 0
    with tenant_context(data["a"]):
        assert Trade.objects.unscoped().count() == 3
        assert Trade.all_tenants.count() == 3
        assert set(Trade.all_tenants.values_list("tenant_id", flat=True)) == {data["a"].pk}
    with tenant_context(data["b"]):
        assert Trade.objects.unscoped().count() == 2
        assert set(Trade.objects.unscoped().values_list("tenant_id", flat=True)) == {data["b"].pk}


def test_unscoped_queryset_has_no_tenant_filter_in_its_sql(data):
    with tenant_context(data["a"]):
        scoped = str(Trade.objects.all().query)
        unscoped = str(Trade.objects.unscoped().query)
        plain = str(Trade.all_tenants.all().query)
    assert '"trades"."tenant_id" =' in scoped
    assert "tenant_id =" not in unscoped.replace('"', "")
    assert "tenant_id =" not in plain.replace('"', "")


def test_all_tenants_is_djangos_default_manager(db):
    assert Trade._meta.default_manager is Trade.all_tenants
    assert User._meta.default_manager is User.all_tenants
    assert Trade._default_manager.count() == 0  # usable with no context, shows nothing


# --- writing another tenant's rows ---------------------------------------------------


def test_saving_a_row_of_another_tenant_raises(data, user_a):
    trade = TradeFactory(user=user_a)
    with tenant_context(data["b"]):
        with pytest.raises(CrossTenantWrite):
            trade.save()
        with pytest.raises(CrossTenantWrite):
            Trade(tenant=data["a"], user=user_a, symbol="AAPL", side="buy", quantity=1, price=1).save()
    with tenant_context(data["a"]):
        assert Trade.objects.count() == 4


def test_saving_a_row_of_the_outer_tenant_in_a_nested_context_raises(data, user_a):
    trade = TradeFactory(user=user_a)
    with tenant_context(data["a"]):
        trade.symbol = "CHANGED"
        with tenant_context(data["b"]), pytest.raises(CrossTenantWrite):
            trade.save()
    with tenant_context(data["a"]):
        assert Trade.objects.get(pk=trade.pk).symbol != "CHANGED"


def test_bulk_create_of_another_tenants_rows_is_refused_by_rls(data, user_b):
    """bulk_create skips save(): the database's insert policy is what refuses it."""
    with pytest.raises(DatabaseError, match="row-level security"), tenant_context(data["a"]):
        Trade.all_tenants.bulk_create(
            [Trade(tenant=data["b"], user=user_b, symbol="AAPL", side="buy", quantity=1, price=1)]
        )
    with tenant_context(data["b"]):
        assert Trade.objects.count() == 2


def test_raw_insert_of_another_tenants_row_is_refused_by_rls(data, user_b):
    with pytest.raises(DatabaseError, match="row-level security"), tenant_context(data["a"]):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO trades (id, tenant_id, user_id, symbol, side, quantity, price, executed_at, created_at)"
                " VALUES (gen_random_uuid(), %s, %s, 'AAPL', 'buy', 1, 1, now(), now())",
                [data["b"].pk, user_b.pk],
            )
    with tenant_context(data["b"]):
        assert Trade.objects.count() == 2


def test_update_and_delete_cannot_reach_another_tenants_rows(data):
    with tenant_context(data["a"]):
        assert Trade.all_tenants.filter(tenant_id=data["b"].pk).update(symbol="HACKED") == 0
        assert Trade.all_tenants.filter(tenant_id=data["b"].pk).delete()[0] == 0
        with connection.cursor() as cursor:
            cursor.execute("UPDATE trades SET symbol = 'HACKED' WHERE tenant_id = %s", [data["b"].pk])
            assert cursor.rowcount == 0
    with tenant_context(data["b"]):
        assert Trade.objects.count() == 2
        assert not Trade.objects.filter(symbol="HACKED").exists()


def test_moving_a_row_to_another_tenant_is_refused(data, user_a):
    """UPDATE ... SET tenant_id to B while running as A violates the policy's WITH CHECK
    (on a Citus cluster, Citus refuses first: a row never changes its distribution value)."""
    trade = TradeFactory(user=user_a)
    refusal = "row-level security|modifying the partition value"
    with pytest.raises(DatabaseError, match=refusal), tenant_context(data["a"]):
        with connection.cursor() as cursor:
            cursor.execute("UPDATE trades SET tenant_id = %s WHERE id = %s", [data["b"].pk, trade.pk])
    with tenant_context(data["a"]):
        assert Trade.objects.get(pk=trade.pk).tenant_id == data["a"].pk


def test_a_user_created_in_a_context_belongs_to_it(tenant_a, tenant_b):
    with tenant_context(tenant_b):
        user = User.objects.create_user("dora", password="secret-password-1")
    assert user.tenant_id == tenant_b.pk
    with tenant_context(tenant_a):
        assert not User.objects.filter(username="dora").exists()
    assert UserFactory(tenant=tenant_a, username="dora").tenant_id == tenant_a.pk
