"""`citus_move_tenant <slug> --to HOST:PORT [--isolate] [--transfer-mode block_writes]`:
move one tenant's shards (every tenant table, colocated) to another worker,
online, as the cluster superuser (CITUS_ADMIN_DATABASE_URL). --isolate first splits the tenant onto shards of its
own (isolate_tenant_to_new_shard), so the move takes no other tenant along.
Refuses the logical-replication modes, which hang on the FORCE-RLS tables
(tenants/catalog/shard_moves.py). Exit 2 when refused or on bad arguments."""

import time

from django.core.management.base import BaseCommand, CommandError

from tenants.catalog.shard_moves import (
    SAFE_TRANSFER_MODE,
    ShardMoveRefused,
    admin_connection,
    checked_transfer_mode,
    isolate_tenant,
    move_tenant,
    tenant_placement,
    tenants_sharing_shard,
)
from tenants.constants import OWNER_DATABASE
from tenants.management.base import tenant_by_slug


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"--to must be HOST:PORT (a worker of the cluster), not '{value}'.", returncode=2)
    return host, int(port)


class Command(BaseCommand):
    help = (
        "Move one tenant's shards to another Citus worker, online (block_writes). "
        "Exit status: 0 done, 1 failed, 2 refused (bad arguments or the mode that hangs)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--to", required=True, help="target worker as HOST:PORT")
        parser.add_argument("--isolate", action="store_true", help="first give the tenant shards of its own")
        parser.add_argument("--transfer-mode", default=SAFE_TRANSFER_MODE, help="only block_writes is accepted")

    def handle(self, *args, slug: str, to: str, isolate: bool, transfer_mode: str, **options):
        host, port = host_port(to)
        try:
            checked_transfer_mode(transfer_mode)
            tenant = tenant_by_slug(slug)
            with admin_connection(OWNER_DATABASE) as admin, admin.cursor() as cursor:
                if isolate:
                    started = time.monotonic()
                    isolated = isolate_tenant(cursor, tenant.pk, transfer_mode)
                    self.stdout.write(f"isolated {slug}: {isolated} in {time.monotonic() - started:.2f} s")
                else:
                    sharing = tenants_sharing_shard(cursor, tenant.pk)
                    if sharing:
                        self.stdout.write(f"{slug} shares its shards with {sharing} other tenant(s): they move too")
                before = tenant_placement(cursor, tenant.pk)
                started = time.monotonic()
                after = move_tenant(cursor, tenant.pk, host, port, transfer_mode)
        except ShardMoveRefused as refused:
            raise CommandError(str(refused), returncode=2) from refused
        self.stdout.write(f"moved {slug}: {before} -> {after} in {time.monotonic() - started:.2f} s")
