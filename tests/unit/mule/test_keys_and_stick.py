"""Mule keys (files, public key lines, trust) and the stick's files (checks, survey)."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from dtncloud.errors import ConfigError, ConnectError
from dtncloud.mule.keys import NodeKey, TrustedKeys, parse_public_key_line, public_key_line
from dtncloud.mule.manifest import Entry, Manifest, encode_manifest
from dtncloud.mule.plan import node_dir_name
from dtncloud.mule.report import SyncReport
from dtncloud.mule.stick import Stick, load_or_create_key, read_trusted_dir, write_atomic
from dtncloud.mule.survey import survey


def test_a_key_is_made_private_on_first_use_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "data" / "mule.key"
    key = load_or_create_key(path, "dtn://a/")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path, "dtn://a/").public_hex == key.public_hex
    line = (tmp_path / "data" / "mule.key.pub").read_text()
    assert parse_public_key_line(line, "x") == ("dtn://a/", key.public_hex)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_key(path, "dtn://a/")


def test_public_key_lines_and_trusted_directories(tmp_path: Path) -> None:
    key = NodeKey(bytes(32))
    (tmp_path / "a.pub").write_text("# site a\n" + public_key_line("dtn://a/", key.public_hex))
    (tmp_path / "notes.txt").write_text("ignored")
    assert read_trusted_dir(tmp_path) == [("dtn://a/", key.public_hex, str(tmp_path / "a.pub"))]
    (tmp_path / "b.pub").write_text("ed25519 1234 dtn://b/\n")
    with pytest.raises(ConfigError, match="64 hex digits"):
        read_trusted_dir(tmp_path)
    with pytest.raises(ConfigError, match="not a node ID"):
        parse_public_key_line(f"ed25519 {key.public_hex} dtn://b/inbox", "x")


def test_a_node_is_trusted_with_one_key_only() -> None:
    trusted = TrustedKeys({"dtn://a/": "11" * 32})
    trusted.add("dtn://a/", "11" * 32)
    with pytest.raises(ConfigError, match="two different keys"):
        trusted.add("dtn://a/", "22" * 32)


def test_a_missing_or_foreign_directory_is_not_a_stick(tmp_path: Path) -> None:
    with pytest.raises(ConnectError, match="is not there"):
        Stick(tmp_path / "gone").open(create=True)
    (tmp_path / "photo.jpg").write_text("x")
    with pytest.raises(ConnectError, match="not empty"):
        Stick(tmp_path).open(create=True)
    (tmp_path / "dtncloud-mule.txt").write_text("something else\n")
    with pytest.raises(ConnectError, match="not a mule"):
        Stick(tmp_path).open(create=True)


def test_files_are_checked_against_their_entry(tmp_path: Path) -> None:
    stick = Stick(tmp_path)
    data = b"a bundle, say"
    good = Entry("x", "dtn://b/", len(data), hashlib.sha256(data).hexdigest(), None, ())
    write_atomic(tmp_path, "f", data)
    assert stick.read_checked(tmp_path / "f", good) == (data, None)
    assert "truncated" in str(
        stick.read_checked(
            tmp_path / "f", good.__class__("x", "dtn://b/", len(data) + 1, good.sha256, None, ())
        )[1]
    )
    write_atomic(tmp_path, "f", data.upper())
    assert "SHA-256" in str(stick.read_checked(tmp_path / "f", good)[1])
    assert "missing" in str(stick.read_checked(tmp_path / "nope", good)[1])
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temporary file left behind


def test_the_survey_sorts_believed_manifests_from_the_rest(tmp_path: Path) -> None:
    a, b = NodeKey(bytes(range(32))), NodeKey(bytes(range(1, 33)))
    trusted = TrustedKeys({"dtn://a/": a.public_hex, "dtn://b/": b.public_hex})
    stick = Stick(tmp_path)
    stick.open(create=True)
    a_dir = stick.node_path(node_dir_name("dtn://a/"))
    a_dir.mkdir()
    listed = "1" * 32 + ".bundle"
    entry = Entry("x", "dtn://b/", 1, "00" * 32, None, ("dtn://b/",))
    manifest = Manifest("dtn://a/", a.public_hex, bundles={listed: entry})
    write_atomic(a_dir, "manifest", encode_manifest(manifest, a))
    for name in (listed, "2" * 32 + ".bundle", ".tmp-x", "README"):
        (a_dir / name).write_bytes(b"x")
    # b's manifest copied into a directory of its own making: wrong place
    elsewhere = stick.node_path("elsewhere")
    elsewhere.mkdir()
    write_atomic(elsewhere, "manifest", encode_manifest(Manifest("dtn://b/", b.public_hex), b))
    (tmp_path / "holiday.jpg").write_bytes(b"x")

    found = survey(stick, trusted, "dtn://b/", b)
    assert list(found.others) == ["dtn://a/"]
    assert found.own_valid and found.own.bundles == {}
    problems = {p.path: p.reason for p in found.problems}
    assert set(problems) == {
        "holiday.jpg",
        f"nodes/{a_dir.name}/README",
        f"nodes/{a_dir.name}/{'2' * 32}.bundle",
        "nodes/elsewhere",
    }
    assert "wrong directory" in problems["nodes/elsewhere"]


def test_reports_round_trip_and_summarise() -> None:
    report = SyncReport("/media/usb/mule", exported=2, exported_bytes=2048, imported=1)
    report.skip("nodes/x", "manifest from an untrusted node")
    again = SyncReport.from_dict(report.to_dict())
    assert again == report
    text = "\n".join(again.summary())
    assert "exported 2 bundles / 2.0 KiB" in text
    assert "nodes/x: manifest from an untrusted node" in text
    dry = SyncReport("/m", dry_run=True, exported=1)
    assert "would export 1 bundles" in "\n".join(dry.summary())
