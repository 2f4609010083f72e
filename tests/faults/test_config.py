"""A corrupted or unreadable configuration stops start-up: exit 78 and one stderr line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import figure
from tests.process import cli, free_port, service_env

pytestmark = [pytest.mark.e2e]


def garbage_toml(tmp: Path) -> tuple[dict[str, str], str]:
    """ONTWATCH_CONFIG names a file that is not TOML."""
    path = tmp / "bad.toml"
    path.write_bytes(b"http_port = = 5000\n[[[\x00\xff")
    return {"ONTWATCH_CONFIG": str(path)}, "ONTWATCH_CONFIG"


def syntax_error_toml(tmp: Path) -> tuple[dict[str, str], str]:
    """ONTWATCH_CONFIG names a UTF-8 file with a TOML syntax error."""
    path = tmp / "syntax.toml"
    path.write_text("http_port = = 5000\n[[[\n")
    return {"ONTWATCH_CONFIG": str(path)}, "ONTWATCH_CONFIG"


def directory(tmp: Path) -> tuple[dict[str, str], str]:
    """ONTWATCH_CONFIG names a directory."""
    return {"ONTWATCH_CONFIG": str(tmp)}, "ONTWATCH_CONFIG"


def unreadable(tmp: Path) -> tuple[dict[str, str], str]:
    """A file root cannot read either: a path *through* a regular file (ENOTDIR).

    chmod 000 does not stop root, so the unreadable case is a name whose parent is a file.
    """
    blocker = tmp / "not-a-dir"
    blocker.write_text("x")
    return {"ONTWATCH_CONFIG": str(blocker / "ontwatch.toml")}, "ONTWATCH_CONFIG"


def out_of_range_in_file(tmp: Path) -> tuple[dict[str, str], str]:
    """A valid TOML file with a share above 1 (the environment does not set it)."""
    path = tmp / "range.toml"
    path.write_text("mass_area_share = 1.5\n")
    return {"ONTWATCH_CONFIG": str(path)}, "MASS_AREA_SHARE"


def out_of_range_env(tmp: Path) -> tuple[dict[str, str], str]:
    """An environment variable out of range."""
    return {"ONTWATCH_GROUP_WAIT": "-1"}, "ONTWATCH_GROUP_WAIT"


def wrong_type_in_file(tmp: Path) -> tuple[dict[str, str], str]:
    """A value of the wrong type in the TOML file."""
    path = tmp / "type.toml"
    path.write_text('probe_interval = "often"\n')
    return {"ONTWATCH_CONFIG": str(path)}, "PROBE_INTERVAL"


CASES = [
    garbage_toml,
    syntax_error_toml,
    directory,
    unreadable,
    out_of_range_in_file,
    out_of_range_env,
    wrong_type_in_file,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_config_exits_78_with_one_line(tmp_path: Path, case: object) -> None:
    """`ontwatch run` with a bad configuration: exit 78, one stderr line naming the problem."""
    extra, names = case(tmp_path)  # type: ignore[operator]
    env = service_env(tmp_path / "db.sqlite", free_port(), **extra)
    done = cli("run", env=env, timeout=15)
    lines = done.stderr.strip().splitlines()
    figure(
        f"FAULT config {case.__name__}",
        exit=done.returncode,
        stderr=repr(done.stderr.strip()[:160]),
    )  # type: ignore[attr-defined]
    assert done.returncode == 78, done.stderr
    assert len(lines) == 1, done.stderr
    assert names.lower() in lines[0].lower() and lines[0].startswith("ontwatch: ")
    assert not (tmp_path / "db.sqlite").exists()  # nothing was started
