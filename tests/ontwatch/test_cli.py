"""The `ontwatch` command explains itself: help and examples, tables, spreadsheets, areas, demo.

In-process runs of `main()` for the database paths; the real command beside a real service
process for "through the running service"; the demo run twice for the README's promise.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook

from ontwatch.cli import COMMANDS, build_parser, main
from tests.conftest import HOTSPOT
from tests.process import ROOT, ServiceProcess, cli, free_port, service_env

INDONESIAN_CSV = (
    "\ufeffNo;ID;Nama;Lokasi;Latitude;Longitude;IP;Status\r\n"
    "1;101;Bumijo RT 01;Pos Ronda;-7,789715;110,361450;127.0.0.11;ON\r\n"
    "2;102;Bumijo-1 RT 02;Balai RW;7.799528°S;110.382°E;127.0.0.12;OFF\r\n"
    "3;103;;Masjid;7°47'58.3\"S;110°22'50\"E;127.0.0.13;ON\r\n"
).encode()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings for an in-process main(): its own database, a port where nothing listens."""
    for name in ("ONTWATCH_CONFIG", "ONTWATCH_API_TOKEN", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "ontwatch.db"
    monkeypatch.setenv("ONTWATCH_DB", str(db))
    monkeypatch.setenv("ONTWATCH_HTTP_PORT", str(free_port()))
    monkeypatch.setenv("ONTWATCH_HTTP_HOST", "127.0.0.1")
    return db


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def count_onts(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM onts").fetchone()[0])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"ontwatch \S+\n", capsys.readouterr().out)


def test_every_subcommand_has_a_description_and_an_example() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) <= set(COMMANDS), "a command without an entry in COMMANDS"
    for name, parser in sub.choices.items():
        text = parser.format_help()
        description, example = COMMANDS[name]
        assert description.split()[0] in text, name
        assert f"example:\n  {example}" in text and example.startswith(f"ontwatch {name}")


def test_import_dry_run_prints_the_report_and_changes_nothing(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = tmp_path / "pelanggan.csv"
    sheet.write_bytes(INDONESIAN_CSV)
    code, out, _ = run(capsys, "import", "--dry-run", str(sheet))
    assert code == 0
    assert f"directly in the database {env}" in out
    assert "3 would be imported (3 new, 0 updated), 0 refused" in out
    assert "file: CSV, semicolon-separated" in out
    assert "column 'No' not used: not a known column" in out
    assert "row 4 (id 103): warning: no name: shown by its id" in out
    assert "areas that look like one: Bumijo (1), Bumijo-1 (1): numbered suffix" in out
    assert "dry run: nothing was changed" in out
    assert count_onts(env) == 0
    code, out, _ = run(capsys, "import", str(sheet))
    assert code == 0 and "3 imported (3 new, 0 updated)" in out and count_onts(env) == 3


def test_import_an_xlsx_sheet_by_name(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = Workbook()
    book.active.append(["Catatan: lembar kedua berisi ONT"])
    ws = book.create_sheet("ONT")
    ws.append(["ID", "Nama", "Wilayah", "Lintang", "Bujur", "Alamat IP"])
    ws.append([7, "Pos Ronda", "Sorosutan", "7°49'S", "110°23'E", "127.0.0.70"])
    path = tmp_path / "pelanggan.xlsx"
    book.save(path)
    code, out, err = run(capsys, "import", str(path))
    assert code == 1 and "no header row with an ONT id column" in err  # the first sheet
    code, out, _ = run(capsys, "import", str(path), "--sheet", "ONT")
    assert code == 0 and "1 imported" in out and "file: xlsx, sheet 'ONT' (of 2)" in out
    code, out, _ = run(capsys, "list")
    assert re.search(r"^7\s+Pos Ronda\s+Sorosutan\s+UNKNOWN", out, re.M)


def test_list_is_a_table_and_areas_point_out_spellings(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "import", str(HOTSPOT))[0] == 0
    code, out, _ = run(capsys, "list", "--offline", "--area", "Baciro")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "AREA",
        "STATUS",
        "RTO",
        "SEVERITY",
        "SINCE",
        "FOR",
        "IP",
    ]
    rows = lines[1:-1]
    assert rows and all(" Baciro " in r and " OFF " in r for r in rows)
    assert lines[-1] == f"{len(rows)} ONTs, from the database {env}: the service is not running"
    code, out, _ = run(capsys, "areas")
    assert re.search(r"^Baciro\s+37\s+\d+$", out, re.M)
    assert "Sorosutan (10), Surosutan (1): one letter apart" in out
    assert "    ontwatch areas rename Surosutan Sorosutan" in out
    code, out, _ = run(capsys, "areas", "rename", "Surosutan", "Sorosutan")
    assert code == 0 and "1 ONTs moved (directly in the database" in out
    code, out, _ = run(capsys, "areas")
    assert "Surosutan" not in out and re.search(r"^Sorosutan\s+11\s", out, re.M)
    code, _, err = run(capsys, "areas", "rename", "Nowhere", "Baciro")
    assert code == 1 and "no ONT is in area 'Nowhere'" in err


def test_an_unknown_ont_id_says_how_to_find_ids(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "import", str(HOTSPOT))[0] == 0
    code, _, err = run(capsys, "simulate", "JP000816", "--delay", "0")
    assert code == 1 and "JP000816 is the customer id (id_pelanggan) of ONT 1" in err
    code, _, err = run(capsys, "simulate", "no-such-ont", "--delay", "0")
    assert code == 1 and "`ontwatch list` shows the ids" in err


def test_csv_export_opens_in_excel_and_imports_back(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "import", str(HOTSPOT))[0] == 0
    out_file = tmp_path / "onts.csv"
    code, out, _ = run(capsys, "export", str(out_file))
    assert code == 0 and "417 ONTs exported as csv" in out
    data = out_file.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data  # Excel reads it as UTF-8
    assert not list(tmp_path.glob(".*.partial"))
    monkeypatch.setenv("ONTWATCH_DB", str(tmp_path / "again.db"))
    code, out, _ = run(capsys, "import", str(out_file))
    assert code == 0 and "417 imported (417 new, 0 updated), 0 refused" in out
    code, _, err = run(capsys, "export", str(tmp_path / "again.db"))
    assert code == 1 and "is the database itself" in err


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    env = service_env(tmp_path / "svc" / "ontwatch.db", free_port())
    svc = ServiceProcess(env, log=tmp_path / "service.log")
    yield svc
    svc.stop()


def test_commands_go_through_the_running_service_and_say_so(
    service: ServiceProcess, tmp_path: Path
) -> None:
    sheet = tmp_path / "pelanggan.csv"
    sheet.write_bytes(INDONESIAN_CSV)
    r = cli("import", "--dry-run", str(sheet), env=service.env)
    assert r.returncode == 0 and f"through the running service at {service.base}" in r.stdout
    assert "3 would be imported (3 new" in r.stdout and service.get("/api/onts") == []
    r = cli("import", str(sheet), env=service.env)
    assert r.returncode == 0 and "3 imported (3 new, 0 updated)" in r.stdout
    r = cli("areas", "rename", "Bumijo-1", "Bumijo", env=service.env)
    assert r.returncode == 0 and "1 ONTs moved (through the running service" in r.stdout
    assert service.get("/api/onts/102")["area"] == "Bumijo"  # the monitor sees it at once
    r = cli("list", "--offline", env=service.env)
    assert re.search(r"^102\s+Bumijo-1 RT 02\s+Bumijo\s+OFF", r.stdout, re.M), r.stdout
    assert r.stdout.splitlines()[-1].endswith(f"through the running service at {service.base}")


def quick_start(tmp_path: Path, db: Path) -> str:
    """The README's quick start: `ontwatch run --demo`, then `ontwatch simulate 5`."""
    env = service_env(db, free_port())
    svc = ServiceProcess(env, "--demo", log=tmp_path / "demo.log")
    try:
        done = cli("simulate", "5", env=env)  # the README's command: one second between steps
        assert done.returncode == 0, done.stderr
        return done.stdout.replace(svc.base, "http://127.0.0.1:5000")
    finally:
        assert svc.stop() == 0


def readme_simulate_output() -> str:
    """The output the README shows for the quick start's `simulate 5`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("`simulate` prints, on every run of these steps:", 1)[1]
    return block.split("```\n", 2)[1]


def test_the_quick_start_prints_the_same_twice_and_leaves_the_database_alone(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "ontwatch.db"
    first = quick_start(tmp_path, db)
    second = quick_start(tmp_path, db)
    assert first == second == readme_simulate_output()
    assert first.count("step ") == 5 and "flapping" not in first
    assert "severity critical" in first.splitlines()[-1]
    assert not db.exists()  # the demo has its own database; ONTWATCH_DB is not touched
    assert (tmp_path / "data" / "demo" / "ontwatch.db").exists()


def test_start_up_errors_name_their_setting_with_exit_78(tmp_path: Path) -> None:
    cases = [
        (
            {"ONTWATCH_HTTP_HOST": "0.0.0.0   # so routers can push"},
            "ONTWATCH_HTTP_HOST",
            "comment",
        ),
        ({"ONTWATCH_DB": str(tmp_path)}, "ONTWATCH_DB", "is a directory"),
    ]
    for extra, setting, words in cases:
        env = service_env(tmp_path / "x.db", free_port(), **extra)
        r = cli("run", env=env, timeout=30)
        assert r.returncode == 78, (extra, r.stderr)
        assert r.stderr.count("\n") == 1 and setting in r.stderr and words in r.stderr
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = service_env(tmp_path / "p.db", taken.getsockname()[1])
        r = cli("run", env=env, timeout=30)
    assert r.returncode == 78 and "ONTWATCH_HTTP_PORT" in r.stderr
    assert "address already in use" in r.stderr and "Traceback" not in r.stderr


def test_start_up_has_no_scheduler_chatter(tmp_path: Path) -> None:
    env = service_env(tmp_path / "q.db", free_port())
    log = tmp_path / "service.log"
    svc = ServiceProcess(env, log=log)
    assert svc.stop() == 0
    text = log.read_text()
    assert "ontwatch serving" in text
    assert "Adding job tentatively" not in text and "apscheduler" not in text


def test_help_runs_without_settings(tmp_path: Path) -> None:
    env = service_env(tmp_path / "h.db", free_port(), ONTWATCH_HTTP_PORT="not-a-port")
    r = subprocess.run(
        [*cli_cmd(), "areas", "--help"], env=env, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0 and "ontwatch areas rename" in r.stdout


def cli_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "ontwatch.cli"]


def test_the_readmes_spreadsheet_import_report_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's migration example, saved as Excel would, gives the report the README shows."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("A spreadsheet as an Indonesian Excel saves it", 1)[1]
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    sheet, report = blocks[0], blocks[1]
    monkeypatch.chdir(tmp_path)
    for name in ("ONTWATCH_CONFIG", "ONTWATCH_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONTWATCH_DB", "data/ontwatch.db")
    monkeypatch.setenv("ONTWATCH_HTTP_PORT", str(free_port()))
    (tmp_path / "pelanggan.csv").write_bytes(b"\xef\xbb\xbf" + sheet.replace("\n", "\r\n").encode())
    code = main(["import", "--dry-run", "pelanggan.csv"])
    assert code == 2  # a refused row
    assert capsys.readouterr().out == report
