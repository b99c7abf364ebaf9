"""The SBD AT dialect: commands, checksums, the response parser and the reports."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.sbd.at import (
    MO_STATUS_NAMES,
    BinaryReply,
    FinalResult,
    InfoLine,
    Ready,
    ResponseParser,
    RingAlert,
    SessionReport,
    checksum,
    encode_command,
    mo_status_name,
    parse_csq,
    parse_sbdix,
    sbdrb_reply,
    sbdwb_payload,
)
from tests.vectors import load_vectors

VECTORS = {case["name"]: case for case in load_vectors("iridium_sbd")["vectors"]}


def text(escaped: str) -> bytes:
    """A vector string such as ``"READY\\\\r\\\\n"`` as the bytes it stands for."""
    return escaped.encode("ascii").decode("unicode_escape").encode("latin-1")


def feed_all(parser: ResponseParser, data: bytes) -> list[Any]:
    return parser.feed(data)


# -- vectors -----------------------------------------------------------------------------------


def test_sbdwb_hello_vector() -> None:
    case = VECTORS["sbdwb_hello"]
    assert encode_command("AT+SBDWB=5") == text(case["command"])
    assert sbdwb_payload(b"hello") == bytes.fromhex(case["host_sends_hex"])
    assert checksum(b"hello") == b"\x02\x14"
    parser = ResponseParser()
    assert parser.feed(text(case["modem_reply_1"])) == [Ready()]
    assert parser.feed(text(case["modem_reply_2"])) == [InfoLine("0"), FinalResult(True)]


def test_sbdrb_hello_vector() -> None:
    case = VECTORS["sbdrb_hello"]
    assert encode_command("AT+SBDRB") == text(case["command"])
    assert sbdrb_reply(b"hello") == bytes.fromhex(case["modem_sends_hex"])
    parser = ResponseParser()
    parser.expect_binary()
    items = parser.feed(bytes.fromhex(case["modem_sends_hex"]) + text(case["then"]))
    assert items == [BinaryReply(b"hello", True), FinalResult(True)]
    assert not parser.expecting_binary


def test_empty_mt_buffer_reads_as_zero_length() -> None:
    parser = ResponseParser()
    parser.expect_binary()
    assert parser.feed(b"\x00\x00\x00\x00\r\nOK\r\n") == [BinaryReply(b"", True), FinalResult(True)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sbdix_success_no_mt", SessionReport(0, 12, 0, 0, 0, 0)),
        ("sbdix_success_with_mt", SessionReport(0, 13, 1, 7, 5, 2)),
        ("sbdix_failure_no_network", SessionReport(32, 13, 2, 0, 0, 0)),
    ],
)
def test_sbdix_vectors(name: str, expected: SessionReport) -> None:
    line = text(VECTORS[name]["modem_reply"]).decode().splitlines()[0]
    assert parse_sbdix(line) == expected


def test_sbdix_reply_through_the_parser() -> None:
    reply = text(VECTORS["sbdix_success_no_mt"]["modem_reply"])
    items = ResponseParser().feed(reply)
    assert items[-1] == FinalResult(True)
    assert isinstance(items[0], InfoLine)
    assert parse_sbdix(items[0].text) == SessionReport(0, 12, 0, 0, 0, 0)


def test_mo_status_table_matches_the_vectors() -> None:
    table = load_vectors("iridium_sbd")["sbdix_mo_status"]
    for code in range(0, 64):
        report = SessionReport(code, 0, 0, 0, 0, 0)
        assert report.mo_succeeded == (code <= 4), code
        assert mo_status_name(code)
    for key in table:
        if key.isdigit():
            assert int(key) in MO_STATUS_NAMES, key
    assert "failure" in mo_status_name(99)
    assert SessionReport(32, 0, 2, 0, 0, 0).mailbox_failed


@pytest.mark.parametrize(
    "line",
    [
        "+SBDIX: 0, 12, 0, 0",  # too few fields
        "+SBDIX: a, 1, 2, 3, 4, 5",
        "+SBDIX: 0, 70000, 0, 0, 0, 0",  # MOMSN is 16 bits
        "+CSQ:5",
        "",
    ],
)
def test_sbdix_rejects_what_is_not_a_report(line: str) -> None:
    assert parse_sbdix(line) is None


def test_sbdixa_and_spacing_variants() -> None:
    assert parse_sbdix("+SBDIXA:1,2,3,4,5,6") == SessionReport(1, 2, 3, 4, 5, 6)


@pytest.mark.parametrize(
    ("line", "value"),
    [("+CSQ:5", 5), ("+CSQ: 0", 0), ("+CSQF:3", 3), ("+CSQ:9", None), ("OK", None)],
)
def test_csq(line: str, value: int | None) -> None:
    assert parse_csq(line) == value


def test_commands_end_with_cr_only() -> None:
    assert encode_command("AT&K0") == b"AT&K0\r"
    with pytest.raises(ValueError):
        encode_command("AT\nX")


def test_checksum_wraps_at_16_bits() -> None:
    assert checksum(b"\xff" * 300) == (255 * 300 & 0xFFFF).to_bytes(2, "big")
    assert checksum(b"") == b"\x00\x00"


# -- the parser --------------------------------------------------------------------------------


def test_parser_items() -> None:
    parser = ResponseParser()
    stream = b"AT\r\r\nOK\r\nSBDRING\r\n\r\nERROR\r\n+CSQ:4\r\n\r\nOK\r\nREADY\r\n"
    assert parser.feed(stream) == [
        InfoLine("AT"),
        FinalResult(True),
        RingAlert(),
        FinalResult(False),
        InfoLine("+CSQ:4"),
        FinalResult(True),
        Ready(),
    ]
    assert InfoLine("AT+SBDIX").is_echo and not InfoLine("+SBDIX: 0").is_echo


def test_binary_reply_after_echo_and_ring() -> None:
    parser = ResponseParser()
    parser.expect_binary()
    items = parser.feed(b"AT+SBDRB\r" + b"SBDRING\r\n" + sbdrb_reply(b"\r\nOK\r\n") + b"\r\nOK\r\n")
    assert items == [
        InfoLine("AT+SBDRB"),
        RingAlert(),
        BinaryReply(b"\r\nOK\r\n", True),
        FinalResult(True),
    ]


def test_binary_reply_with_a_bad_checksum() -> None:
    parser = ResponseParser()
    parser.expect_binary()
    assert parser.feed(b"\x00\x02hi\x00\x00") == [BinaryReply(b"hi", False)]


def test_error_instead_of_a_binary_reply_ends_the_expectation() -> None:
    parser = ResponseParser()
    parser.expect_binary()
    assert parser.feed(b"\r\nERROR\r\n") == [FinalResult(False)]
    assert not parser.expecting_binary


def test_overlong_lines_are_dropped() -> None:
    parser = ResponseParser()
    assert parser.feed(b"x" * 2000) == []
    assert parser.feed(b"y" * 100 + b"\r\nOK\r\n") == [FinalResult(True)]
    assert parser.dropped_bytes >= 2100


def test_reset_forgets_partial_input() -> None:
    parser = ResponseParser()
    parser.expect_binary()
    parser.feed(b"\x00\x10abc")
    parser.reset()
    assert parser.feed(b"OK\r\n") == [FinalResult(True)]


STREAM = (
    b"AT+CSQ\r\r\n+CSQ:5\r\n\r\nOK\r\n"
    b"READY\r\n0\r\n\r\nOK\r\n"
    b"SBDRING\r\n"
    b"+SBDIX: 0, 13, 1, 7, 5, 2\r\n\r\nOK\r\n"
)
BINARY = sbdrb_reply(b"\x00\r\n\xffOK\r\n" * 20) + b"\r\nOK\r\n"


@given(st.lists(st.integers(0, len(STREAM) + len(BINARY)), max_size=12))
def test_any_split_of_the_stream_gives_the_same_items(cuts: list[int]) -> None:
    """The items do not depend on how the bytes are split into reads."""
    whole = ResponseParser()
    expected = whole.feed(STREAM)
    whole.expect_binary()
    expected += whole.feed(BINARY)

    parser = ResponseParser()
    items: list[Any] = []
    boundaries = sorted({0, len(STREAM), *cuts, len(STREAM) + len(BINARY)})
    data = STREAM + BINARY
    for start, end in itertools.pairwise(boundaries):
        if start == len(STREAM):
            parser.expect_binary()
        if start < len(STREAM) < end:  # the binary expectation starts at the boundary
            items += parser.feed(data[start : len(STREAM)])
            parser.expect_binary()
            items += parser.feed(data[len(STREAM) : end])
        else:
            items += parser.feed(data[start:end])
    assert items == expected
    assert expected[-2] == BinaryReply(b"\x00\r\n\xffOK\r\n" * 20, True)


@given(st.lists(st.tuples(st.binary(max_size=700), st.booleans()), max_size=20))
def test_garbage_never_raises(chunks: list[tuple[bytes, bool]]) -> None:
    parser = ResponseParser()
    for chunk, binary in chunks:
        if binary:
            parser.expect_binary()
        for item in parser.feed(chunk):
            assert isinstance(item, FinalResult | InfoLine | Ready | RingAlert | BinaryReply)
    assert len(parser._buffer) <= 2 + 0x07FF + 2 + 700
