"""`citus_rebalance [--transfer-mode block_writes]`: spread the shards over every
worker of the Citus cluster (after `scripts/citus.sh add-worker`), online, as
the cluster superuser (CITUS_ADMIN_DATABASE_URL). Refuses the logical-replication modes, which hang on the
FORCE-RLS tables (tenants/catalog/shard_moves.py). Exit 2 when refused."""

import time

from django.core.management.base import BaseCommand, CommandError

from tenants.catalog.shard_moves import (
    SAFE_TRANSFER_MODE,
    ShardMoveRefused,
    admin_connection,
    checked_transfer_mode,
    rebalance,
)
from tenants.constants import OWNER_DATABASE


class Command(BaseCommand):
    help = (
        "Rebalance the Citus cluster's shards over all workers, online (block_writes). "
        "Exit status: 0 done, 1 failed, 2 refused (bad arguments or the mode that hangs)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--transfer-mode", default=SAFE_TRANSFER_MODE, help="only block_writes is accepted")

    def handle(self, *args, transfer_mode: str, **options):
        try:
            checked_transfer_mode(transfer_mode)
            started = time.monotonic()
            with admin_connection(OWNER_DATABASE) as admin, admin.cursor() as cursor:
                moves = rebalance(cursor, transfer_mode)
        except ShardMoveRefused as refused:
            raise CommandError(str(refused), returncode=2) from refused
        self.stdout.write(f"rebalanced: {moves} shard moves in {time.monotonic() - started:.1f} s ({transfer_mode})")
