"""Writing one-member zips from chunks deflated on threads."""

import zipfile
import zlib

import pytest

from app.evaluation import zip_writer
from app.evaluation.zip_writer import write_zip


@pytest.mark.parametrize("compressor", ["isal", "zlib"])
def test_write_zip_joins_chunks_into_one_readable_member(tmp_path, monkeypatch, compressor):
    """The server deflates with ISA-L; where isal is absent (the srs client) zlib writes the same format."""
    if compressor == "zlib":
        monkeypatch.setattr(zip_writer, "_compressor", lambda: zlib)
    else:
        assert zip_writer._compressor().__name__ == "isal.isal_zlib", "requirements.txt pins isal"
    path = tmp_path / "out.zip"
    chunks = [b"a,b\n"] + [f"{i},{i * i}\n".encode() for i in range(2000)]
    write_zip(path, "out.csv", [lambda chunk=chunk: chunk for chunk in chunks])
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["out.csv"]
        assert archive.testzip() is None
        assert archive.read("out.csv") == b"".join(chunks)
