"""``dtncloud bundle create``: options, outputs and errors."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dtncloud.bpv7 import BlockType, BundleFlag, CrcType, decode_bundle
from dtncloud.cli import _output
from dtncloud.eid import EID
from tests.unit.cli.helpers import CREATED_ISO, CREATED_MS, Run, one_error_line, read_bundle


def test_create_writes_the_bundle_described_by_the_options(
    make_bundle: Callable[..., Path],
) -> None:
    path = make_bundle(
        "b.bundle",
        lifetime="1h30m",
        hop_limit=7,
        report="reception,delivery",
        report_to="ipn:9.0",
        sequence=42,
        crc="16",
        block_crc="32",
    )
    bundle = read_bundle(path)
    p = bundle.primary
    assert p.source == EID.parse("dtn://sensor/temp")
    assert p.destination == EID.parse("dtn://cloud/in")
    assert p.report_to == EID.parse("ipn:9.0")
    assert p.creation_time == CREATED_MS
    assert p.sequence == 42
    assert p.lifetime == 90 * 60 * 1000
    assert p.crc_type == CrcType.CRC16
    assert p.flags == BundleFlag.REPORT_RECEPTION | BundleFlag.REPORT_DELIVERY
    assert bundle.payload == b"hello from the field"
    assert bundle.hop_count is not None and bundle.hop_count.limit == 7
    assert {b.crc_type for b in bundle.blocks} == {CrcType.CRC32C}


def test_create_defaults(run: Run) -> None:
    result = run("bundle", "create", "--source", "ipn:1.1", "--dest", "ipn:2.1")
    assert result.exit_code == 0, result.stderr
    bundle = decode_bundle(result.stdout_bytes)
    assert bundle.payload == b""
    assert bundle.primary.lifetime == 86_400_000
    assert bundle.primary.crc_type == CrcType.CRC32C
    assert bundle.primary.report_to == EID.parse("ipn:1.0")
    # "now": some time after this test was written.
    assert bundle.primary.creation_time > CREATED_MS
    assert [b.type_code for b in bundle.blocks] == [BlockType.PAYLOAD]


def test_creation_time_zero_adds_a_bundle_age_block(make_bundle: Callable[..., Path]) -> None:
    bundle = read_bundle(make_bundle(creation_time="0"))
    assert bundle.primary.creation_time == 0
    assert bundle.bundle_age == 0


def test_creation_time_in_dtn_milliseconds(make_bundle: Callable[..., Path]) -> None:
    assert read_bundle(make_bundle(creation_time="12345")).primary.creation_time == 12345


def test_payload_from_a_file_and_from_stdin(run: Run, tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(bytes(range(256)))
    base = ["bundle", "create", "--source", "ipn:1.1", "--dest", "ipn:2.1"]
    result = run(*base, "--payload-file", "data.bin", "--out", "f.bundle")
    assert result.exit_code == 0, result.stderr
    assert read_bundle(tmp_path / "f.bundle").payload == bytes(range(256))
    assert "wrote f.bundle" in result.stdout
    result = run(*base, "--payload-file", "-", input=b"from stdin")
    assert decode_bundle(result.stdout_bytes).payload == b"from stdin"


def test_must_not_fragment(make_bundle: Callable[..., Path]) -> None:
    flags = read_bundle(make_bundle(must_not_fragment=True)).primary.flags
    assert flags & BundleFlag.MUST_NOT_FRAGMENT


def test_create_then_inspect_round_trip(run: Run) -> None:
    created = run(
        "bundle",
        "create",
        "--source",
        "dtn://a/app",
        "--dest",
        "ipn:5.1",
        "--text",
        "round",
        "--creation-time",
        CREATED_ISO,
        "--sequence",
        "3",
        "--hop-limit",
        "9",
    )
    assert created.exit_code == 0
    shown = run("bundle", "inspect", "--json", "-", input=created.stdout_bytes)
    assert shown.exit_code == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["file"] == "<stdin>"
    assert report["source"] == "dtn://a/app"
    assert report["destination"] == "ipn:5.1"
    assert report["creation_time"] == CREATED_MS
    assert report["sequence"] == 3
    assert report["payload_length"] == 5
    assert report["size"] == len(created.stdout_bytes)
    assert report["blocks"][0]["hop_limit"] == 9


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--source", "sensor", "'--source'"),
        ("--dest", "dtn://", "'--dest'"),
        ("--report-to", "ipn:1", "'--report-to'"),
        ("--lifetime", "forever", "not a duration"),
        ("--lifetime", "-5s", "not a duration"),
        ("--crc", "64", "'--crc'"),
        ("--hop-limit", "0", "'--hop-limit'"),
        ("--hop-limit", "256", "'--hop-limit'"),
        ("--report", "everything", "unknown name 'everything'"),
        ("--creation-time", "yesterday", "is not a time"),
        ("--creation-time", "1999-12-31T23:59:59Z", "before the DTN epoch"),
        ("--sequence", "-1", "'--sequence'"),
    ],
)
def test_bad_option_values_are_usage_errors(
    run: Run, option: str, value: str, expected: str
) -> None:
    args = {"--source": "ipn:1.1", "--dest": "ipn:2.1", option: value}
    result = run("bundle", "create", *[x for pair in args.items() for x in pair], "--out", "x")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith("dtncloud: error: bundle create: ")
    assert expected in line
    assert not Path("x").exists()


def test_text_and_payload_file_together_are_refused(run: Run) -> None:
    result = run(
        "bundle",
        "create",
        "--source",
        "ipn:1.1",
        "--dest",
        "ipn:2.1",
        "--text",
        "a",
        "--payload-file",
        "b",
    )
    assert result.exit_code == 2
    assert "not both" in one_error_line(result)


def test_missing_payload_file_names_it(run: Run) -> None:
    result = run(
        "bundle",
        "create",
        "--source",
        "ipn:1.1",
        "--dest",
        "ipn:2.1",
        "--payload-file",
        "nope.bin",
    )
    assert result.exit_code == 1
    assert one_error_line(result) == "dtncloud: error: nope.bin: no such file or directory"


def test_a_bundle_the_rfc_forbids_is_refused_in_one_line(run: Run) -> None:
    result = run(
        "bundle",
        "create",
        "--source",
        "dtn:none",
        "--dest",
        "ipn:2.1",
        "--report",
        "delivery",
    )
    assert result.exit_code == 1
    assert "must not request status reports" in one_error_line(result)


def test_binary_output_is_never_written_to_a_terminal(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.BytesIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(_output, "_binary_stream", lambda name: terminal)
    result = run("bundle", "create", "--source", "ipn:1.1", "--dest", "ipn:2.1")
    assert result.exit_code == 1
    assert "refusing to write a binary bundle to a terminal" in one_error_line(result)
    assert terminal.getvalue() == b""


def test_output_into_a_missing_directory_fails_cleanly(run: Run, tmp_path: Path) -> None:
    result = run(
        "bundle", "create", "--source", "ipn:1.1", "--dest", "ipn:2.1", "--out", "no/such/x.b"
    )
    assert result.exit_code == 1
    assert one_error_line(result).startswith("dtncloud: error: no/such/x.b: ")


def test_output_to_a_directory_is_refused(run: Run, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    result = run("bundle", "create", "--source", "ipn:1.1", "--dest", "ipn:2.1", "--out", "d")
    assert result.exit_code == 1
    assert "is a directory" in one_error_line(result)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.bundle"
    target.write_bytes(b"old contents")

    def broken_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(_output.os, "replace", broken_replace)
    result = run(
        "bundle", "create", "--source", "ipn:1.1", "--dest", "ipn:2.1", "--out", "out.bundle"
    )
    assert result.exit_code == 1
    assert "no space left on device" in one_error_line(result)
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bundle"]
