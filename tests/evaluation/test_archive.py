"""Upload inspection and capped reading of zip archives."""

import struct
import zipfile
from pathlib import Path

import pytest

from app.evaluation import archive as archive_module
from app.evaluation.archive import inspect_upload, open_capped, read_header, read_single_csv
from app.evaluation.errors import ValidationError

CSV = b"cell_id,rep,direction_size,timestamp\n1,1,576,0.0\n"
LIMIT = 10_000_000


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_single_csv_is_accepted(tmp_path):
    path = make_zip(tmp_path / "defence.zip", {"traces.csv": CSV})
    assert inspect_upload(path, max_member_bytes=LIMIT) == "traces.csv"


def test_directories_and_macos_metadata_are_ignored(tmp_path):
    path = make_zip(
        tmp_path / "defence.zip",
        {"data/": b"", "data/traces.csv": CSV, "__MACOSX/data/._traces.csv": b"x", "data/.DS_Store": b"x"},
    )
    assert inspect_upload(path, max_member_bytes=LIMIT) == "data/traces.csv"


def test_not_a_zip_says_what_to_upload(tmp_path):
    path = tmp_path / "defence.zip"
    path.write_bytes(CSV)
    with pytest.raises(ValidationError, match="not a zip archive: upload a .zip holding one .csv"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_no_csv_member_is_rejected(tmp_path):
    path = make_zip(tmp_path / "defence.zip", {"traces.txt": CSV})
    with pytest.raises(ValidationError, match=r"no \.csv file \(found 'traces.txt'\)"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_two_csv_members_are_rejected(tmp_path):
    path = make_zip(tmp_path / "defence.zip", {"a.csv": CSV, "b.csv": CSV})
    with pytest.raises(ValidationError, match="holds 2 files \\('a.csv', 'b.csv'\\)"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_a_csv_and_another_file_are_rejected(tmp_path):
    path = make_zip(tmp_path / "defence.zip", {"a.csv": CSV, "notes.txt": b"hello"})
    with pytest.raises(ValidationError, match="only one .csv"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_a_set_is_read_from_its_one_csv_under_the_same_rule_as_an_upload(tmp_path):
    one = make_zip(tmp_path / "set.zip", {"__MACOSX/._set.csv": b"x", "set/": b"", "set/set.csv": CSV})
    assert read_single_csv(one, "write it again.") == CSV
    two = make_zip(tmp_path / "two.zip", {"a.csv": CSV, "b.csv": CSV})
    with pytest.raises(ValidationError, match=r"holds 2 files \('a.csv', 'b.csv'\): write it again\.$"):
        read_single_csv(two, "write it again.")


def test_duplicate_member_names_are_rejected(tmp_path):
    path = tmp_path / "defence.zip"
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", CSV)
        archive.writestr("a.csv", CSV)
    with pytest.raises(ValidationError, match="several members named 'a.csv'"):
        inspect_upload(path, max_member_bytes=LIMIT)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.csv", "contains '..'"),
        ("/etc/evil.csv", "absolute path"),
        ("dir\\evil.csv", "backslash"),
        ("C:evil.csv", "drive letter"),
    ],
)
def test_unsafe_names_are_rejected(tmp_path, name, reason):
    path = tmp_path / "defence.zip"
    with zipfile.ZipFile(path, "w") as archive:
        # ZipInfo keeps the name as given when written through writestr with a ZipInfo.
        info = zipfile.ZipInfo("placeholder.csv")
        info.filename = name
        archive.writestr(info, CSV)
    with pytest.raises(ValidationError, match=reason):
        inspect_upload(path, max_member_bytes=LIMIT)


def _set_encrypted_flag(path: Path) -> None:
    """Set general-purpose bit 0 (encrypted) in the local and central headers."""
    data = bytearray(path.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = data.find(signature)
        (flags,) = struct.unpack_from("<H", data, position + flag_offset)
        struct.pack_into("<H", data, position + flag_offset, flags | 0x1)
    path.write_bytes(bytes(data))


def test_encrypted_member_is_rejected(tmp_path):
    path = make_zip(tmp_path / "defence.zip", {"traces.csv": CSV})
    _set_encrypted_flag(path)
    with pytest.raises(ValidationError, match="'traces.csv' is encrypted: upload an archive without a password"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_declared_size_over_the_limit_is_rejected(tmp_path):
    path = make_zip(tmp_path / "defence.zip", {"traces.csv": b"0" * 5000})
    with pytest.raises(ValidationError, match="decompresses to 0.005 MB, more than the 0.001 MB allowed"):
        inspect_upload(path, max_member_bytes=1000)


def test_open_capped_reads_the_member(tmp_path):
    path = make_zip(tmp_path / "defence.zip", {"traces.csv": CSV})
    with open_capped(path, "traces.csv", len(CSV)) as stream:
        assert stream.read() == CSV


def test_zip_bomb_stops_once_the_cap_is_passed(tmp_path):
    path = make_zip(tmp_path / "bomb.zip", {"bomb.csv": b"\0" * 20_000_000})
    assert path.stat().st_size < 100_000  # about 1000:1
    with open_capped(path, "bomb.csv", 1_000_000) as stream:
        read = 0
        with pytest.raises(ValidationError, match="decompresses to more than 1 MB"):
            while chunk := stream.read(65536):
                read += len(chunk)
        assert read <= 1_000_000


def test_lying_declared_size_is_caught(tmp_path):
    """A zip declaring a tiny size for a big member passes inspection but fails while reading."""
    path = make_zip(tmp_path / "liar.zip", {"bomb.csv": b"1" * 5_000_000})
    data = bytearray(path.read_bytes())
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        position = data.find(signature)
        struct.pack_into("<I", data, position + size_offset, 1000)
    path.write_bytes(bytes(data))
    assert inspect_upload(path, max_member_bytes=100_000) == "bomb.csv"
    with pytest.raises(ValidationError), open_capped(path, "bomb.csv", 100_000) as stream:
        while stream.read(65536):
            pass


def many_entries_zip(path: Path, nb_entries: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("traces.csv", CSV)
        for number in range(nb_entries - 1):
            archive.writestr(f"f{number}.txt", b"")
    return path


def test_a_flood_of_entries_is_refused_before_the_directory_is_parsed(tmp_path, monkeypatch):
    path = many_entries_zip(tmp_path / "flood.zip", 20_000)

    def not_parsed(*args, **kwargs):
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(archive_module.zipfile, "ZipFile", not_parsed)
    with pytest.raises(ValidationError, match="holds 20000 entries, more than the 100 entries an upload may have"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_an_end_record_understating_the_entries_is_caught_by_the_directory_size(tmp_path):
    path = many_entries_zip(tmp_path / "liar.zip", 5_000)
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 3, 3)  # entries on this disk, entries in total
    path.write_bytes(bytes(data))
    with pytest.raises(ValidationError, match="file list, more than the 100 entries an upload may have"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_a_signature_inside_the_end_record_does_not_hide_the_entry_count(tmp_path, monkeypatch):
    """The end record's size field written as `PK\x05\x06`: a search for the last signature found that one,
    could not read a record there and skipped the cap, while zipfile parsed every entry of the real record."""
    path = many_entries_zip(tmp_path / "crafted.zip", 2_000)
    data = bytearray(path.read_bytes())
    end = len(data) - 22
    data[end + 12 : end + 16] = b"PK\x05\x06"  # the central directory's size
    path.write_bytes(bytes(data))

    def not_parsed(*args, **kwargs):
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(archive_module.zipfile, "ZipFile", not_parsed)
    with pytest.raises(ValidationError, match="holds 2000 entries, more than the 100 entries an upload may have"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_an_end_record_that_cannot_be_read_means_not_a_zip(tmp_path, monkeypatch):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100 + b"PK\x05\x06\x00\x00")  # a signature with no record
    monkeypatch.setattr(archive_module.zipfile, "ZipFile", lambda *a, **k: pytest.fail("zipfile was asked"))
    with pytest.raises(ValidationError, match="The file is not a zip archive"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_entries_up_to_the_cap_get_the_usual_answer(tmp_path):
    path = many_entries_zip(tmp_path / "hundred.zip", 100)
    with pytest.raises(ValidationError, match=r"holds 100 files \('traces.csv', 'f0.txt'"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_many_duplicate_names_are_named_once(tmp_path):
    path = tmp_path / "defence.zip"
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as archive:
        for _ in range(90):
            archive.writestr("a.csv", CSV)
    with pytest.raises(ValidationError, match="several members named 'a.csv': rebuild"):
        inspect_upload(path, max_member_bytes=LIMIT)


def test_a_header_flood_is_refused_before_its_fields_are_parsed(tmp_path):
    header = ",".join(["cell_id"] * 20_000).encode()
    path = make_zip(tmp_path / "defence.zip", {"traces.csv": header + b"\n1,1,1,0\n"})
    with pytest.raises(ValidationError, match="first line of 'traces.csv' has 20000 fields, more than the 104"):
        read_header(path, "traces.csv", LIMIT, 104)
    assert read_header(path, "traces.csv", LIMIT, 20_000) == ["cell_id"] * 20_000
