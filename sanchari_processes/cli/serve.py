"""``sanchari serve``: the OGC API - Processes service."""

from __future__ import annotations

from pathlib import Path

import click

from sanchari_processes.errors import InvalidInputError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="SANCHARI_HOST")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=5000, show_default=True, envvar="SANCHARI_PORT"
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="PYGEOAPI_CONFIG",
    help="pygeoapi configuration. Default: the repository's pygeoapi-config.yml.",
)
@click.option("--url", envvar="SANCHARI_URL", help="Public base URL (default: http://HOST:PORT).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="HTTP request threads.",
)
def serve(host: str, port: int, config_path: Path | None, url: str | None, threads: int) -> None:
    """Run the OGC API - Processes service (waitress; Ctrl-C stops it).

    \b
    Settings come from the environment (see pygeoapi-config.yml), e.g.:
      SANCHARI_GEOTIFF_DIR=../shared/data/scenes sanchari serve --port 5000
    """
    from sanchari_processes.service.server import serve as run_server
    from sanchari_processes.settings import DEFAULT_CONFIG

    config_path = config_path or DEFAULT_CONFIG
    if not config_path.is_file():
        raise InvalidInputError(f"configuration not found: {config_path}")
    run_server(config_path, host, port, url, threads)
