"""Importing inventories as ISPs keep them: Excel/LibreOffice CSV in an Indonesian locale, .xlsx.

Every file here is written byte for byte the way those programs save it (`;` between fields,
decimal commas, a UTF-8 BOM, CRLF), or built as a real workbook with openpyxl.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openpyxl import Workbook

from api.columns import ALIASES, ColumnMap, field_for
from api.coordinates import parse_coordinate
from api.records import ImportFormatError, ImportPlan, parse_import, report_lines
from api.spreadsheet import XLSX_TYPE, sniff_delimiter

BOM = b"\xef\xbb\xbf"


def excel_csv(*lines: str, encoding: str = "utf-8") -> bytes:
    """Lines joined as Excel saves "CSV UTF-8": BOM first, CRLF after every line."""
    body = "".join(line + "\r\n" for line in lines).encode(encoding)
    return (BOM if encoding == "utf-8" else b"") + body


INDONESIAN = excel_csv(
    "No;ID;Nama;Lokasi;Latitude;Longitude;IP;Status",
    "1;101;Bumijo RT 01;Pos Ronda RT 01;-7,789715;110,361450;127.0.0.11;ON",
    "2;102;Sorosutan RW 3;Balai RW 03;7.799528°S;110.382°E;127.0.0.12;OFF",
    "3;103;Gedongkiwo RT 5;Masjid;7°47'58.3\"S;110°22'50\"E;127.0.0.13;ON",
    ";;;;;;;",  # LibreOffice keeps formatted empty rows
    "4;104;;Rumah Pak RT;-7,80;110,37;127.0.0.14;OFF(RTO)",
)


def by_id(plan: ImportPlan) -> dict[str, Any]:
    return {r.id: r for r in plan.records}


def test_indonesian_excel_csv_imports_names_areas_and_coordinates() -> None:
    plan = parse_import(INDONESIAN, "text/csv")
    assert [r.result for r in plan.rows] == ["imported"] * 4
    recs = by_id(plan)
    assert recs["101"].name == "Bumijo RT 01" and recs["101"].to_ont().area == "Bumijo"
    assert recs["101"].location == "Pos Ronda RT 01"
    assert recs["101"].lat == pytest.approx(-7.789715) and recs["101"].lon == pytest.approx(
        110.36145
    )
    assert recs["102"].lat == pytest.approx(-7.799528) and recs["102"].lon == pytest.approx(110.382)
    assert recs["103"].lat == pytest.approx(-(7 + 47 / 60 + 58.3 / 3600))
    assert recs["103"].lon == pytest.approx(110 + 22 / 60 + 50 / 3600)
    assert recs["104"].status.value == "OFF" and recs["104"].ip == "127.0.0.14"
    # Rows are numbered as the spreadsheet shows them: the header is row 1, the blank row 5.
    assert [r.row for r in plan.rows] == [2, 3, 4, 6]


def test_the_report_says_what_was_read_and_names_every_unused_column() -> None:
    plan = parse_import(INDONESIAN, "text/csv")
    report = plan.report([True] * len(plan.records))
    lines = report_lines(report, "onts.csv")
    assert lines[0] == "onts.csv: 4 imported (4 new, 0 updated), 0 refused"
    assert "  file: CSV, semicolon-separated" in lines
    assert "  note: 1 empty row skipped" in lines
    assert "  column 'No' not used: not a known column" in lines
    assert report["columns"] == {
        "id": "ID",
        "name": "Nama",
        "location": "Lokasi",
        "lat": "Latitude",
        "lon": "Longitude",
        "ip": "IP",
        "status": "Status",
    }
    # A row without a name is imported, with a warning.
    assert "  row 6 (id 104): warning: no name: shown by its id" in lines
    assert any(line.startswith("  areas (4): ") for line in lines)


def test_a_bad_cell_is_refused_naming_the_files_own_column_and_row() -> None:
    data = excel_csv(
        "ID;Nama;Lintang;Bujur",
        "1;Baciro A;-7,79;110,38",
        "2;Baciro B;7.79°E;110,38",  # E is not a latitude's hemisphere
        "3;Baciro C;-7,79;abc",
    )
    plan = parse_import(data, "text/csv")
    refused = {r.row: r.errors[0] for r in plan.refused}
    assert refused[3]["field"] == "Lintang" and "hemisphere" in refused[3]["message"]
    assert refused[4]["field"] == "Bujur"
    assert [r.id for r in plan.records] == ["1"]


def test_english_headers_tabs_and_utf16_as_excel_unicode_text() -> None:
    text = (
        "ONT ID\tName\tCustomer ID\tAddress\tLat\tLng\tIP Address\tKelurahan\r\n"
        "A-1\tPos Ronda Baciro\tJP000816\tJl. Ipda Tut Harsono\t-7.7941922\t110.3838668\t"
        "127.0.0.21\tBaciro\r\n"
    )
    plan = parse_import(b"\xff\xfe" + text.encode("utf-16-le"), "")
    (rec,) = plan.records
    assert (rec.id, rec.name, rec.customer_id, rec.location) == (
        "A-1",
        "Pos Ronda Baciro",
        "JP000816",
        "Jl. Ipda Tut Harsono",
    )
    assert rec.to_ont().area == "Baciro" and rec.ip == "127.0.0.21"
    assert plan.source == "CSV, tab-separated"
    assert "read as UTF-16 (its byte-order mark)" in plan.notes


def test_plain_excel_csv_in_windows_1252_is_read_and_said() -> None:
    data = "id;nama;alamat\r\n7;Warung Bu Sèti;Gang Mawar\r\n".encode("cp1252")
    plan = parse_import(data, "text/csv")
    assert plan.records[0].name == "Warung Bu Sèti"
    assert any("Windows-1252" in n for n in plan.notes)


def test_excel_sep_line_and_comma_files_still_work() -> None:
    plan = parse_import(b"sep=;\r\nid;name\r\n1;Baciro\r\n", "text/csv")
    assert plan.records[0].name == "Baciro" and plan.rows[0].row == 3
    plan = parse_import('id,name,latitude\n1,Baciro,"-7,79"\n', "text/csv")
    assert plan.records[0].lat == pytest.approx(-7.79)


def test_no_id_header_is_a_diagnosis_not_a_delimiter_guess() -> None:
    with pytest.raises(ImportFormatError) as exc:
        parse_import(excel_csv("Nomor;Nama;Alamat", "1;Baciro;Jl. A"), "text/csv")
    assert "no header row with an ONT id column" in str(exc.value)
    assert "'Nomor', 'Nama', 'Alamat'" in str(exc.value)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["ID;Nama;Latitude", "1;A;-7,79", "2;B;-7,80"], ";"),
        (["ID,Nama,Latitude", "1,A,-7.79"], ","),
        (["ID\tNama", "1\tA,B"], "\t"),
        (["ID;Nama", "1;Rumah, Gang 2"], ";"),  # a comma in a name does not win
    ],
)
def test_delimiter_sniffing(lines: list[str], expected: str) -> None:
    assert sniff_delimiter([line + "\r\n" for line in lines]) == expected


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Nama", "name"),
        ("ID Pelanggan", "customer_id"),
        ("id_pelanggan", "customer_id"),
        ("Pelanggan", "customer_id"),
        ("ALAMAT", "location"),
        ("Lokasi", "location"),
        ("Wilayah", "area"),
        ("kelurahan", "area"),
        ("Lintang", "lat"),
        ("Bujur", "lon"),
        ("Alamat IP", "ip"),
        ("ip-address", "ip"),
        ("RTO", "rto_count"),
        ("last_on", "last_on"),
        ("\ufeffID", "id"),
        ("No", None),
        ("Icon", None),
    ],
)
def test_header_alias_table(header: str, field: str | None) -> None:
    assert field_for(header) == field


def test_two_columns_for_one_field_the_preferred_alias_wins_and_the_other_is_named() -> None:
    cmap = ColumnMap.of(["id", "alamat", "lokasi"])
    assert cmap.fields["location"] == "lokasi"  # lokasi comes before alamat in the table
    assert cmap.unused == {"alamat": "location is taken from column 'lokasi'"}
    assert set(ALIASES) >= {"id", "name", "customer_id", "location", "lat", "lon", "ip", "area"}


@pytest.mark.parametrize(
    ("text", "axis", "value"),
    [
        ("-7,789715", "lat", -7.789715),
        ("7.799528°S", "lat", -7.799528),
        ("7.799528 ° S", "lat", -7.799528),
        ("S 7.799528", "lat", -7.799528),
        ("7,8 LS", "lat", -7.8),
        ("110.4°E", "lon", 110.4),
        ("110,4 BT", "lon", 110.4),
        ("7°47'58.3\"S", "lat", -(7 + 47 / 60 + 58.3 / 3600)),
        ("7° 47′ 58.3″ S", "lat", -(7 + 47 / 60 + 58.3 / 3600)),
        ("7°47.97'S", "lat", -(7 + 47.97 / 60)),
        ("-7°47'58.3\"", "lat", -(7 + 47 / 60 + 58.3 / 3600)),
        ("−7.79", "lat", -7.79),  # the minus sign of a word processor
        ("", "lat", None),
        (110.5, "lon", 110.5),
    ],
)
def test_coordinates(text: object, axis: str, value: float | None) -> None:
    got = parse_coordinate(text, axis)  # type: ignore[arg-type]
    assert got == (pytest.approx(value) if value is not None else None)


@pytest.mark.parametrize(
    ("text", "axis", "message"),
    [
        ("7.8°E", "lat", "not a hemisphere of a latitude"),
        ("7.8°S", "lon", "not a hemisphere of a longitude"),
        ("-7.8S", "lat", "a minus sign and a hemisphere letter"),
        ("7°61'S", "lat", "below 60"),
        ("7.5°30'S", "lat", "degrees with a fraction"),
        ("tujuh", "lat", "is not a coordinate"),
    ],
)
def test_bad_coordinates_say_why(text: str, axis: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_coordinate(text, axis)  # type: ignore[arg-type]


def workbook(path: Path) -> bytes:
    """A real .xlsx: a notes sheet first is not the case here; a title row above the header."""
    book = Workbook()
    ws = book.active
    ws.title = "Pelanggan"
    ws.append(["Daftar ONT RT/RW Net Bumijo"])  # a title row, as people make them
    ws.append([])
    ws.append(["No", "ID", "Nama", "Lokasi", "Latitude", "Longitude", "IP", "Status", "Last On"])
    ws.append([1, 1, "Bumijo RT 01", "Pos Ronda", -7.789715, 110.36145, "127.0.0.31", "ON", None])
    ws.append([2, 2.0, "Bumijo-1 RT 02", "Balai", "7.79°S", "110.36°E", "127.0.0.32", "OFF",
               datetime(2025, 9, 11, 7, 5, 52)])  # fmt: skip
    ws.append([3, "003", None, "Rumah", None, None, "127.0.0.33", "ON", None])
    other = book.create_sheet("ODP")
    other.append(["id", "name", "area"])
    other.append(["X9", "Kotak ODP 9", "ODP-09"])
    target = path / "onts.xlsx"
    book.save(target)
    return target.read_bytes()


def test_xlsx_first_sheet_with_a_title_row(tmp_path: Path) -> None:
    plan = parse_import(workbook(tmp_path), XLSX_TYPE)
    recs = by_id(plan)
    assert sorted(recs) == ["003", "1", "2"]  # 2.0 in a cell is the id "2"; "003" stays text
    assert recs["1"].name == "Bumijo RT 01" and recs["1"].lat == pytest.approx(-7.789715)
    assert recs["2"].to_ont().area == "Bumijo-1" and recs["2"].lat == pytest.approx(-7.79)
    assert recs["2"].last_on == datetime(2025, 9, 11, 7, 5, 52)
    assert plan.source == "xlsx, sheet 'Pelanggan' (of 2)"
    assert "header found in row 3; the rows above it are skipped" in plan.notes
    assert plan.unused == {"No": "not a known column"}
    assert [r.row for r in plan.rows] == [4, 5, 6]
    assert plan.rows[2].warnings[0] == "no name: shown by its id"


def test_xlsx_named_sheet_and_an_unknown_one(tmp_path: Path) -> None:
    data = workbook(tmp_path)
    plan = parse_import(data, "application/octet-stream", sheet="ODP")  # found by its signature
    assert [(r.id, r.area) for r in plan.records] == [("X9", "ODP-09")]
    with pytest.raises(
        ImportFormatError, match="no sheet 'Nope'; the workbook has: Pelanggan, ODP"
    ):
        parse_import(data, XLSX_TYPE, sheet="Nope")


def test_a_broken_workbook_is_one_clear_error() -> None:
    with pytest.raises(ImportFormatError, match=r"not a readable \.xlsx workbook"):
        parse_import(b"PK\x03\x04 not really a zip", XLSX_TYPE)


def test_similar_area_spellings_are_pointed_out_in_the_report() -> None:
    lines = ["ID;Nama;Wilayah"]
    lines += [f"{i};Rumah {i};Sorosutan" for i in range(1, 6)]
    lines += ["6;Rumah 6;Surosutan", "7;Rumah 7;Bumijo", "8;Rumah 8;Bumijo-1", "9;Rumah 9;bumijo"]
    plan = parse_import(excel_csv(*lines), "text/csv")
    report = plan.report([True] * len(plan.records))
    groups = {tuple(g["names"]): g["why"] for g in report["similar_areas"]}
    assert groups == {
        ("Sorosutan", "Surosutan"): "one letter apart",
        ("Bumijo", "Bumijo-1", "bumijo"): "numbered suffix",
    }
    text = "\n".join(report_lines(report, "f.csv"))
    assert "areas that look like one: Sorosutan (5), Surosutan (1): one letter apart" in text
    assert "ontwatch areas rename OLD NEW" in text


async def test_the_api_imports_an_xlsx_by_its_content_type(
    client: TestClient, tmp_path: Path
) -> None:
    data = workbook(tmp_path)
    headers = {"Content-Type": XLSX_TYPE}
    dry = await client.post("/api/onts/import?dry_run=1", data=data, headers=headers)
    assert dry.status == 200
    report = await dry.json()
    # The client starts with ONTs 1, 2 and 3: "003" is new, 1 and 2 are updates.
    assert report["dry_run"] is True and report["imported"] == 3 and report["created"] == 1
    assert (await client.get("/api/onts/003")).status == 404  # a dry run writes nothing
    r = await client.post("/api/onts/import", data=data, headers=headers)
    report = await r.json()
    assert report["imported"] == 3 and report["unused_columns"] == [
        {"column": "No", "reason": "not a known column"}
    ]
    ont = await (await client.get("/api/onts/003")).json()
    assert ont["ip"] == "127.0.0.33" and ont["name"] == ""
    two = await (await client.get("/api/onts/2")).json()
    assert two["name"] == "Bumijo-1 RT 02" and two["area"] == "Bumijo-1"
    odp = await client.post("/api/onts/import?sheet=ODP", data=data, headers=headers)
    assert (await odp.json())["imported"] == 1
    bad = await client.post("/api/onts/import?sheet=Nope", data=data, headers=headers)
    assert bad.status == 400 and "Pelanggan, ODP" in (await bad.json())["detail"]


def test_a_sheet_beyond_the_row_limit_is_refused_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.spreadsheet

    monkeypatch.setattr(api.spreadsheet, "MAX_ROWS", 5)
    book = Workbook()
    for i in range(10):
        book.active.append([i, f"ONT {i}"] if i else ["id", "name"])
    book.save(tmp_path / "big.xlsx")
    with pytest.raises(ImportFormatError, match="more than 5 rows"):
        parse_import((tmp_path / "big.xlsx").read_bytes(), XLSX_TYPE)
    csv_text = "id;name\r\n" + "".join(f"{i};ONT {i}\r\n" for i in range(10))
    with pytest.raises(ImportFormatError, match="more than 5 rows"):
        parse_import(csv_text.encode(), "text/csv")
