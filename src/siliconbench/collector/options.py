"""CLI options shared by the collector's command groups."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ENV = "SILICONBENCH_"
DEFAULT_STORE = "chdb://./siliconbench-data"
StoreOpt = Annotated[str, typer.Option(envvar=ENV + "STORE", help="chdb://PATH (embedded) or http(s)://user:pass@host:8123/db.")]
PasswordOpt = Annotated[Optional[str], typer.Option(envvar=ENV + "CLICKHOUSE_PASSWORD", help="Overrides the password in --store.", show_default=False)]
