import json

import pytest

from guardstack.store.spool import Spool


def test_append_is_ordered_and_clear_removes_the_file(tmp_path):
    spool = Spool(tmp_path / "s.jsonl")
    assert not spool.pending and spool.count() == 0
    spool.append([{"id": "a"}, {"id": "b"}])
    spool.append([{"id": "c"}])
    assert spool.pending and spool.count() == 3
    batches = list(spool.batches(2))
    assert [[r["id"] for r in b] for b in batches] == [["a", "b"], ["c"]]
    spool.clear()
    assert not spool.path.exists()


def test_torn_last_line_is_set_aside_not_replayed_or_lost(tmp_path):
    # A crash in the middle of a write leaves half a line at the end.
    spool = Spool(tmp_path / "s.jsonl")
    spool.append([{"id": "a"}])
    with open(spool.path, "ab") as fh:
        fh.write(b'{"id": "b", "mess')
    assert [r["id"] for b in spool.batches(10) for r in b] == ["a"]
    kept = [json.loads(x) for x in spool.rejected_path.read_text().splitlines()]
    assert kept[0]["raw"] == '{"id": "b", "mess'
    assert "unreadable" in kept[0]["reason"]


def test_a_spool_that_is_a_directory_is_a_clear_error(tmp_path):
    from guardstack.store.errors import StoreError
    with pytest.raises(StoreError, match="is a directory"):
        Spool(tmp_path).lock()
