"""The agent's disk spool: what survives a restart, what is quarantined, and when it is full."""

from __future__ import annotations

import logging

import pytest

from siliconbench.agent.errors import ConfigError
from siliconbench.agent.spool import SEQ_BLOCK, Spool
from siliconbench.core.wire import pb


def put(spool: Spool, n: int) -> list[int]:
    seqs = []
    for _ in range(n):
        seq = spool.next_seq()
        spool.add(spool.write(seq, pb.Batch(seq=seq, batch_id=f"{spool.agent_id}/boot/{seq}").SerializeToString()))
        seqs.append(seq)
    return seqs


def test_unacknowledged_batches_survive_a_restart_in_order(tmp_path):
    spool = Spool.open(tmp_path, "a")
    seqs = put(spool, 5)
    spool.remove(seqs[1])
    spool.close()
    again = Spool.open(tmp_path, "a")
    assert list(again.entries) == [seqs[0], *seqs[2:]]
    assert pb.Batch.FromString(again.read(again.entries[seqs[2]])).batch_id == f"a/boot/{seqs[2]}"


def test_a_restarted_spool_never_reuses_a_sequence_number(tmp_path):
    spool = Spool.open(tmp_path, "a")
    seqs = put(spool, 3)
    for seq in seqs:
        spool.remove(seq)  # all acknowledged: nothing on disk says which numbers were used
    spool.close()
    assert Spool.open(tmp_path, "a").next_seq() > seqs[-1]


def test_sequence_numbers_are_reserved_in_blocks(tmp_path):
    spool = Spool.open(tmp_path, "a")
    seqs = put(spool, SEQ_BLOCK + 5)
    spool.close()
    assert Spool.open(tmp_path, "a").next_seq() > seqs[-1]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupt_file_is_quarantined_with_a_log_line_and_the_rest_replayed(tmp_path, caplog, damage):
    spool = Spool.open(tmp_path, "a")
    seqs = put(spool, 3)
    spool.close()
    victim = tmp_path / f"{seqs[1]:020d}.batch"
    raw = victim.read_bytes()
    victim.write_bytes(raw[:-3] if damage == "truncate" else raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    with caplog.at_level(logging.ERROR):
        again = Spool.open(tmp_path, "a")
    assert list(again.entries) == [seqs[0], seqs[2]]
    assert (tmp_path / "quarantine" / victim.name).exists()
    assert f"{victim.name} is corrupt or truncated" in caplog.text


def test_a_write_cut_short_leaves_no_batch_behind(tmp_path):
    spool = Spool.open(tmp_path, "a")
    put(spool, 1)
    spool.close()
    (tmp_path / f"{99:020d}.tmp").write_bytes(b"SBB1 half")
    again = Spool.open(tmp_path, "a")
    assert len(again.entries) == 1 and not list(tmp_path.glob("*.tmp"))


def test_two_agents_cannot_share_a_spool(tmp_path):
    Spool.open(tmp_path, "a")
    with pytest.raises(ConfigError, match="in use by another agent process"):
        Spool.open(tmp_path, "a")


def test_another_agents_batches_are_not_taken_over(tmp_path):
    spool = Spool.open(tmp_path, "node-1")
    put(spool, 1)
    spool.close()
    with pytest.raises(ConfigError, match="--node-name node-1"):
        Spool.open(tmp_path, "node-2")


def test_full_when_the_bytes_reach_the_bound(tmp_path):
    spool = Spool.open(tmp_path, "a", max_bytes=100)
    seqs = put(spool, 10)
    assert spool.full
    for seq in seqs:
        spool.remove(seq)
    assert not spool.full and spool.bytes == 0


# A damaged `state` file: what the spool rebuilds from the batches beside it, and what it cannot.
DAMAGED_STATES = {
    "truncated": b"a 10",                   # cut in the middle of the number: no final newline
    "truncated to the id": b"a",
    "empty": b"",
    "garbage": b"\x89PNG\r\n\x1a\n\x00\x00",
    "wrong type": b'{"agent_id": "a", "next_seq": 1001}\n',
    "not a whole number": b"a 12.5\n",
    "no agent id": b" 1001\n",
    "negative": b"a -4\n",
    "a number no spool reaches": b"a " + b"9" * 5000 + b"\n",
    "huge": b"a 1001\n" * 1_000_000,     # read no further than a state can be long
}


@pytest.mark.parametrize("damage", DAMAGED_STATES.values(), ids=DAMAGED_STATES)
def test_a_damaged_state_is_rebuilt_from_the_batches_with_one_log_line(tmp_path, caplog, damage):
    spool = Spool.open(tmp_path, "a")
    seqs = put(spool, 3)
    spool.remove(seqs[0])
    spool.close()
    (tmp_path / "state").write_bytes(damage)
    with caplog.at_level(logging.WARNING):
        again = Spool.open(tmp_path, "a")
    assert list(again.entries) == seqs[1:]
    assert again.next_seq() > seqs[-1]
    rebuilt = [r.getMessage() for r in caplog.records if "state file is damaged" in r.getMessage()]
    assert len(rebuilt) == 1 and "rebuilt from the 2 batches" in rebuilt[0]
    again.close()
    assert (tmp_path / "state").read_text().startswith("a ")  # written whole again
    caplog.clear()
    Spool.open(tmp_path, "a")
    assert "state file is damaged" not in caplog.text


def test_a_damaged_state_beside_no_batches_is_rebuilt_empty(tmp_path, caplog):
    (tmp_path / "state").write_bytes(b"\xff\xfe")
    with caplog.at_level(logging.WARNING):
        spool = Spool.open(tmp_path, "a")
    assert not spool.entries and spool.next_seq() >= 1
    assert "rebuilt from the 0 batches" in caplog.text


def test_a_damaged_state_beside_another_agents_batches_names_that_agent(tmp_path):
    spool = Spool.open(tmp_path, "node-1")
    put(spool, 2)
    spool.close()
    (tmp_path / "state").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"state .* is damaged \(cut short\) .* batches of agent 'node-1', not "
                                          r"'node-2'; start with --node-name node-1 to deliver them first, or move "
                                          r"the directory away \(mv "):
        Spool.open(tmp_path, "node-2")
    assert len(Spool.open(tmp_path, "node-1").entries) == 2  # nothing was quarantined or renumbered


def test_batches_that_name_no_agent_beside_a_damaged_state_are_not_taken_over(tmp_path):
    spool = Spool.open(tmp_path, "a")
    seq = spool.next_seq()
    spool.add(spool.write(seq, pb.Batch(seq=seq, batch_id="no-agent-here").SerializeToString()))
    spool.close()
    (tmp_path / "state").write_bytes(b"")
    with pytest.raises(ConfigError, match=f"batches that name no agent; move the directory away "
                                          f"\\(mv {tmp_path} {tmp_path}.old\\)"):
        Spool.open(tmp_path, "a")


def test_a_state_that_is_not_a_file_is_named_with_the_command_that_removes_it(tmp_path):
    (tmp_path / "state").mkdir()
    with pytest.raises(ConfigError, match=f"spool state {tmp_path}/state is not a file; remove it "
                                          f"\\(rm -r {tmp_path}/state\\)"):
        Spool.open(tmp_path, "a")
