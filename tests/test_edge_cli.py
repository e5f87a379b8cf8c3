"""The `tiengmo` command gives the hub the dashboard's folder; the hub knows no dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import static_dir
from tiengmo.cli import build_parser


@pytest.mark.parametrize("argv", [["hub", "--config", "hub.toml"],
                                  ["hub", "run", "--config", "hub.toml"],
                                  ["hub", "--http", "127.0.0.1:0", "run"]])
def test_tiengmo_hub_passes_the_dashboards_package_data(argv: list[str]) -> None:
    args = build_parser(only="hub").parse_args(argv)
    assert args.static_dir == static_dir()
    assert (args.static_dir / "index.html").is_file()


def test_the_hubs_app_refuses_a_folder_without_an_index(tmp_path: Path) -> None:
    from hub.app import create_app

    with pytest.raises(ValueError, match=r"no index\.html"):
        create_app(object(), static_dir=tmp_path)  # type: ignore[arg-type]
