"""The storage interface's contract, run on the local folder and on an S3 server (moto's, in a subprocess)."""

from __future__ import annotations

import pytest

from app.storage import LocalStorage, S3Storage, StorageError, make_storage
from tests.s3server import apply_env, make_bucket, object_keys, s3_server


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("moto")) as env:
        yield env


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path, monkeypatch):
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    env = request.getfixturevalue("s3_env")
    apply_env(monkeypatch, env)
    return S3Storage(make_bucket(env), "deployment/a", tmp_path / "scratch")


def _file(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_saved_bytes_read_back_with_their_size(storage, tmp_path):
    data = bytes(range(256)) * 40_000  # 10 MB: above boto3's multipart threshold
    assert storage.save("submissions/1/upload.zip", _file(tmp_path, "a", data)) == len(data)
    with storage.open("submissions/1/upload.zip") as handle:
        assert handle.read() == data
    assert storage.size("submissions/1/upload.zip") == len(data)
    assert storage.exists("submissions/1/upload.zip")
    with storage.local_path("submissions/1/upload.zip") as path:
        assert path.read_bytes() == data


def test_copy_keeps_the_source_and_move_does_not(storage, tmp_path):
    kept = _file(tmp_path, "kept", b"one")
    storage.save("k/copy", kept)
    assert kept.exists()
    moved = _file(tmp_path, "moved", b"two")
    storage.save("k/move", moved, move=True)
    assert not moved.exists()
    with storage.open("k/move") as handle:
        assert handle.read() == b"two"


def test_saving_again_replaces_the_file(storage, tmp_path):
    storage.save("x/file", _file(tmp_path, "1", b"first version"))
    storage.save("x/file", _file(tmp_path, "2", b"second"))
    with storage.open("x/file") as handle:
        assert handle.read() == b"second"
    assert storage.size("x/file") == len(b"second")


def test_a_missing_key_is_a_storage_error_everywhere(storage):
    assert not storage.exists("nothing/here")
    with pytest.raises(StorageError):
        storage.open("nothing/here")
    with pytest.raises(StorageError):
        storage.size("nothing/here")
    with pytest.raises(StorageError), storage.local_path("nothing/here"):
        pass
    storage.delete("nothing/here")  # deleting what is not there is no error


def test_delete_and_delete_prefix_remove_only_what_they_name(storage, tmp_path):
    for key in ("sets/1/train", "sets/1/test", "sets/10/train", "sets1/other", "keep/me"):
        storage.save(key, _file(tmp_path, "f", key.encode()))
    storage.delete("keep/me")
    assert not storage.exists("keep/me")
    storage.delete_prefix("sets/1")
    assert [storage.exists(k) for k in ("sets/1/train", "sets/1/test", "sets/10/train", "sets1/other")] == [
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize("key", ["", "../escape", "/abs", "a//b", "a/./b", "a\\b", "a/b/..", "spa ce"])
def test_keys_that_could_leave_the_store_are_refused(storage, tmp_path, key):
    with pytest.raises(StorageError):
        storage.save(key, _file(tmp_path, "f", b"x"))
    with pytest.raises(StorageError):
        storage.open(key)


def test_local_path_is_cleaned_up_after_the_block(storage, tmp_path):
    storage.save("p/file.zip", _file(tmp_path, "f", b"content"))
    with storage.local_path("p/file.zip") as path:
        assert path.name.endswith(".zip")
    if isinstance(storage, S3Storage):
        assert not path.exists() and list((tmp_path / "scratch").iterdir()) == []


def test_check_passes_on_a_usable_store(storage):
    storage.check()


def test_s3_objects_live_under_the_prefix(s3_env, monkeypatch, tmp_path):
    apply_env(monkeypatch, s3_env)
    bucket = make_bucket(s3_env)
    storage = make_storage(
        {"STORAGE_URL": f"s3://{bucket}/course-2026", "UPLOAD_FOLDER": "unused", "TEMPORARY_UPLOAD_FOLDER": tmp_path}
    )
    storage.save("submissions/7/upload.zip", _file(tmp_path, "f", b"z"))
    assert object_keys(s3_env, bucket) == ["course-2026/submissions/7/upload.zip"]


def test_s3_check_fails_for_a_missing_bucket(s3_env, monkeypatch, tmp_path):
    apply_env(monkeypatch, s3_env)
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        S3Storage("no-such-bucket-here", "", tmp_path).check()


@pytest.mark.parametrize("url", ["http://bucket/x", "s3://", "file:///tmp"])
def test_a_storage_url_that_is_not_understood_is_named(url):
    with pytest.raises(ValueError, match="STORAGE_URL"):
        make_storage({"STORAGE_URL": url, "UPLOAD_FOLDER": "u", "TEMPORARY_UPLOAD_FOLDER": "t"})
