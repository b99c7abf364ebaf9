"""``dtncloud bundle inspect``: readable dumps, JSON, BPv6, and bad files among good ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from tests.unit.cli.helpers import (
    CREATED_MS,
    Run,
    error_lines,
    one_error_line,
    read_bundle,
)
from tests.vectors import load_vectors

REQUIRED_KEYS = {
    "file",
    "version",
    "flags",
    "crc_type",
    "destination",
    "source",
    "report_to",
    "creation_time",
    "sequence",
    "lifetime",
    "fragment_offset",
    "total_adu_length",
    "blocks",
    "payload_length",
    "payload_sha256",
}
BLOCK_KEYS = {"type", "number", "flags", "crc_type", "length"}


def _vector_file(tmp_path: Path, name: str, key: str = "output_bundle_hex") -> Path:
    path = tmp_path / f"{name}.bundle"
    path.write_bytes(bytes.fromhex(load_vectors(name)[key]))
    return path


def test_text_dump_shows_every_part(run: Run, make_bundle: Callable[..., Path]) -> None:
    make_bundle("b.bundle", hop_limit=12, report="delivery", lifetime="2h", crc="16")
    result = run("bundle", "inspect", "b.bundle")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith("b.bundle: BPv7 bundle, ")
    assert "primary block: version 7, CRC-16" in text
    assert "flags        0x20000 (report-delivery)" in text
    assert "destination  dtn://cloud/in" in text
    assert f"created      2024-05-01T12:00:00.000Z ({CREATED_MS} ms), sequence 0" in text
    assert "lifetime     2h (7200000 ms), expires 2024-05-01T14:00:00.000Z" in text
    assert "block 2: hop count (type 10), flags 0x0 (none), no CRC, 3 bytes" in text
    assert "hop limit 12, hop count 0" in text
    assert "block 1: payload (type 1)" in text
    assert "preview 'hello from the field'" in text


def test_json_has_the_documented_keys_and_values(
    run: Run, make_bundle: Callable[..., Path]
) -> None:
    path = make_bundle("j.bundle", hop_limit=3, creation_time="0", block_crc="32")
    result = run("bundle", "inspect", "--json", "j.bundle")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= REQUIRED_KEYS
    bundle = read_bundle(path)
    assert report["file"] == "j.bundle"
    assert report["version"] == 7
    assert report["flags"] == 0
    assert report["crc_type"] == 2
    assert report["source"] == "dtn://sensor/temp"
    assert report["report_to"] == "dtn://sensor/"
    assert report["creation_time"] == 0
    assert report["lifetime"] == 86_400_000
    assert report["fragment_offset"] is None and report["total_adu_length"] is None
    assert report["payload_length"] == len(b"hello from the field")
    assert len(report["payload_sha256"]) == 64
    assert report["size"] == path.stat().st_size
    assert [b["number"] for b in report["blocks"]] == [b.number for b in bundle.blocks]
    for block in report["blocks"]:
        assert set(block) >= BLOCK_KEYS
        assert block["crc_type"] == 2
    by_type = {b["type"]: b for b in report["blocks"]}
    assert by_type[7]["bundle_age"] == 0
    assert by_type[10]["hop_limit"] == 3
    assert by_type[1]["length"] == report["payload_length"]


def test_one_json_line_per_file(run: Run, make_bundle: Callable[..., Path]) -> None:
    make_bundle("a.bundle")
    make_bundle("b.bundle", text="other")
    result = run("bundle", "inspect", "--json", "a.bundle", "b.bundle")
    lines = result.stdout.splitlines()
    assert [json.loads(line)["file"] for line in lines] == ["a.bundle", "b.bundle"]


def test_a_bad_file_among_good_ones(run: Run, make_bundle: Callable[..., Path]) -> None:
    good = make_bundle("good.bundle", block_crc="32")
    data = bytearray(good.read_bytes())
    data[-10] ^= 0xFF  # inside the payload, which a CRC-32C protects
    Path("crc.bundle").write_bytes(bytes(data))
    Path("junk.bundle").write_bytes(b"this is not CBOR")
    result = run(
        "bundle",
        "inspect",
        "--json",
        "good.bundle",
        "crc.bundle",
        "missing.bundle",
        "junk.bundle",
        "good.bundle",
    )
    assert result.exit_code == 1
    assert [json.loads(line)["file"] for line in result.stdout.splitlines()] == [
        "good.bundle",
        "good.bundle",
    ]
    crc, missing, junk = error_lines(result)
    assert crc.startswith("dtncloud: error: crc.bundle: not a valid bundle: ")
    assert "CRC" in crc and "status report reason 8, block unintelligible" in crc
    assert missing == "dtncloud: error: missing.bundle: no such file or directory"
    assert junk.startswith("dtncloud: error: junk.bundle: not a valid bundle: ")
    assert "Traceback" not in result.output


def test_text_mode_also_carries_on_after_a_bad_file(
    run: Run, make_bundle: Callable[..., Path]
) -> None:
    make_bundle("good.bundle")
    Path("empty.bundle").write_bytes(b"")
    result = run("bundle", "inspect", "empty.bundle", "good.bundle")
    assert result.exit_code == 1
    assert "good.bundle: BPv7 bundle" in result.stdout
    assert one_error_line(result).startswith("dtncloud: error: empty.bundle: not a valid bundle")


def test_max_size_refuses_large_files_with_reason_4(
    run: Run, make_bundle: Callable[..., Path]
) -> None:
    make_bundle("b.bundle")
    result = run("bundle", "inspect", "--max-size", "20", "b.bundle")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "exceeds the limit of 20 bytes" in line
    assert "status report reason 4, depleted storage" in line
    stdin = run("bundle", "inspect", "--max-size", "20", "-", input=Path("b.bundle").read_bytes())
    assert "larger than the limit of 20 bytes" in one_error_line(stdin)


def test_bad_max_size_is_a_usage_error(run: Run) -> None:
    result = run("bundle", "inspect", "--max-size", "lots", "x")
    assert result.exit_code == 2
    assert "not a size in bytes" in one_error_line(result)


def test_lenient_accepts_the_rfc_9173_examples(run: Run, tmp_path: Path) -> None:
    path = _vector_file(tmp_path, "rfc9173_A1")
    strict = run("bundle", "inspect", str(path))
    assert strict.exit_code == 1
    assert "--lenient accepts it" in one_error_line(strict)
    lenient = run("bundle", "inspect", "--lenient", str(path))
    assert lenient.exit_code == 0, lenient.stderr
    text = lenient.stdout
    assert "block 2: BIB (block integrity, type 11)" in text
    assert "context BIB-HMAC-SHA2 (1), security source ipn:2.1" in text
    assert "parameter sha variant: 7 (HMAC 512/512)" in text
    assert "result for block 1: expected HMAC (64 bytes)" in text
    assert "preview 'Ready to generate a 32-byte payload'" in text


def test_lenient_reads_ud3tn_extension_blocks(run: Run, tmp_path: Path) -> None:
    # uD3TN writes its EIDs as dtn:NODE (no //), the previous node block's included.
    case = next(
        c for c in load_vectors("bpv7_ud3tn")["vectors"] if c["name"] == "ud3tn_simple_bundle"
    )
    path = tmp_path / "ud3tn.bundle"
    path.write_bytes(bytes.fromhex(case["bundle_hex"]))
    assert "--lenient accepts it" in one_error_line(run("bundle", "inspect", str(path)))
    text = run("bundle", "inspect", "--lenient", str(path))
    assert text.exit_code == 0, text.stderr
    assert "cannot read" not in text.stdout
    assert "block 2: previous node (type 6)" in text.stdout
    assert "  previous node dtn://GS4/" in text.stdout
    assert "  hop limit 30, hop count 0" in text.stdout
    assert "preview 'Hello world!'" in text.stdout
    result = run("bundle", "inspect", "--lenient", "--json", str(path))
    assert result.exit_code == 0, result.stderr
    blocks = {b["number"]: b for b in json.loads(result.stdout)["blocks"]}
    assert "error" not in blocks[2]
    assert blocks[2]["previous_node"] == "dtn://GS4/"
    assert (blocks[3]["hop_limit"], blocks[4]["bundle_age"]) == (30, 0)


def test_json_summarises_security_blocks(run: Run, tmp_path: Path) -> None:
    path = _vector_file(tmp_path, "rfc9173_A4")
    result = run("bundle", "inspect", "--lenient", "--json", str(path))
    assert result.exit_code == 0, result.stderr
    blocks = {b["number"]: b for b in json.loads(result.stdout)["blocks"]}
    bcb = blocks[2]["security"]
    assert bcb["context"] == "BCB-AES-GCM"
    assert bcb["targets"] == [3, 1]
    assert bcb["parameters"]["iv"] == b"Twelve121212".hex()
    assert [r["target"] for r in bcb["results"]] == [3, 1]
    assert blocks[3]["encrypted_by"] == 2 and blocks[1]["encrypted_by"] == 2


def test_admin_records_are_decoded(run: Run) -> None:
    admin = pytest.importorskip("dtncloud.bpv7.admin")
    subject = Bundle.create(
        source="ipn:1.1",
        destination="ipn:2.1",
        payload=b"x",
        creation_time=CREATED_MS,
        sequence=4,
    )
    report = admin.make_status_report(subject, delivered=True, reason=0)
    carrier = admin.admin_bundle(
        report, source="ipn:2.0", destination="ipn:1.0", creation_time=CREATED_MS + 5000
    )
    Path("report.bundle").write_bytes(encode_bundle(carrier))
    text = run("bundle", "inspect", "report.bundle")
    assert text.exit_code == 0, text.stderr
    assert "administrative record: bundle status report" in text.stdout
    assert "delivered  yes" in text.stdout
    assert f"subject    ipn:1.0@{CREATED_MS}.4" in text.stdout
    as_json = json.loads(run("bundle", "inspect", "--json", "report.bundle").stdout)
    record = as_json["admin_record"]
    assert record["record"] == "StatusReport"
    assert record["delivered"] == {"asserted": True, "time": None}
    assert record["subject_id"] == f"ipn:1.0@{CREATED_MS}.4"


def test_bpv6_bundles_are_recognised(run: Run, tmp_path: Path) -> None:
    pytest.importorskip("dtncloud.bpv6")
    path = _vector_file(tmp_path, "bpv6_rfc5050_custody_signal", "bundle_hex")
    text = run("bundle", "inspect", str(path))
    assert text.exit_code == 0, text.stderr
    assert "BPv6 bundle (RFC 5050)" in text.stdout
    assert "administrative record: CustodySignal" in text.stdout
    assert "reason: 3 (redundant reception)" in text.stdout
    result = run("bundle", "inspect", "--json", str(path))
    report = json.loads(result.stdout)
    assert set(report) >= REQUIRED_KEYS
    assert report["version"] == 6
    assert report["crc_type"] is None
    assert report["creation_time"] == 731_540_048_000
    assert report["source"] == "ipn:32768.0"
    assert report["admin_record"]["record"] == "CustodySignal"
    assert all(set(block) >= BLOCK_KEYS for block in report["blocks"])


def test_a_broken_bpv6_bundle_is_one_error_line(run: Run, tmp_path: Path) -> None:
    pytest.importorskip("dtncloud.bpv6")
    path = _vector_file(tmp_path, "bpv6_rfc5050_custody_signal", "bundle_hex")
    path.write_bytes(path.read_bytes()[:30])
    result = run("bundle", "inspect", str(path))
    assert result.exit_code == 1
    assert one_error_line(result).startswith(f"dtncloud: error: {path}: not a valid bundle: ")
