"""``dtncloud bundle sign|verify|encrypt|decrypt`` and the key forms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dtncloud.bpv7 import BlockType, encode_bundle
from tests.unit.cli.helpers import AES_KEY, HMAC_KEY, KEK, Run, one_error_line, read_bundle
from tests.vectors import load_vectors

pytest.importorskip("dtncloud.bpsec")

SOURCE = "dtn://sensor/"


@pytest.fixture
def plain(make_bundle: Callable[..., Path]) -> Path:
    return make_bundle("plain.bundle", hop_limit=8)


def _sign(run: Run, file: str = "plain.bundle", out: str = "signed.bundle", *extra: str) -> None:
    result = run(
        "bundle",
        "sign",
        file,
        "--key",
        HMAC_KEY,
        "--target",
        "0,1",
        "--security-source",
        SOURCE,
        "--out",
        out,
        *extra,
    )
    assert result.exit_code == 0, result.stderr


def _encrypt(run: Run, file: str, out: str, *extra: str) -> None:
    result = run(
        "bundle",
        "encrypt",
        file,
        "--key",
        AES_KEY,
        "--target",
        "1",
        "--security-source",
        SOURCE,
        "--out",
        out,
        *extra,
    )
    assert result.exit_code == 0, result.stderr


def test_sign_then_verify(run: Run, plain: Path, tmp_path: Path) -> None:
    _sign(run, "plain.bundle", "signed.bundle", "--sha", "512", "--scope", "primary")
    signed = read_bundle(tmp_path / "signed.bundle")
    bib = signed.first_block_of_type(BlockType.BLOCK_INTEGRITY)
    assert bib is not None
    result = run("bundle", "verify", "signed.bundle", "--key", HMAC_KEY)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"signed.bundle: block 0 (primary) verified by BIB block {bib.number} "
        f"(HMAC-SHA512, source {SOURCE})",
        f"signed.bundle: block 1 (payload) verified by BIB block {bib.number} "
        f"(HMAC-SHA512, source {SOURCE})",
    ]
    # The written bundle changed nothing but adding the BIB.
    original = read_bundle(plain)
    assert signed.remove_block(bib.number) == original


def test_a_tampered_bundle_fails_verification(run: Run, plain: Path, tmp_path: Path) -> None:
    _sign(run)
    signed = read_bundle(tmp_path / "signed.bundle")
    altered = signed.replace_block(signed.payload_block.with_data(b"hello from the fielD"))
    (tmp_path / "tampered.bundle").write_bytes(encode_bundle(altered))
    result = run("bundle", "verify", "tampered.bundle", "--key", HMAC_KEY)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("dtncloud: error: tampered.bundle: ")
    assert "status report reason 15, failed security operation" in line
    assert result.stdout == ""


def test_a_wrong_key_fails_verification(run: Run, plain: Path) -> None:
    _sign(run)
    result = run("bundle", "verify", "signed.bundle", "--key", "00" * 16)
    assert result.exit_code == 1
    assert "signed.bundle" in one_error_line(result)


def test_verify_needs_a_bib(run: Run, plain: Path) -> None:
    result = run("bundle", "verify", "plain.bundle", "--key", HMAC_KEY)
    assert result.exit_code == 1
    assert "nothing to verify" in one_error_line(result)


def test_verify_the_rfc_9173_example(run: Run, tmp_path: Path) -> None:
    vector = load_vectors("rfc9173_A1")
    (tmp_path / "a1.bundle").write_bytes(bytes.fromhex(vector["output_bundle_hex"]))
    key = vector["keys"]["hmac_key_hex"]
    result = run("bundle", "verify", "--lenient", "a1.bundle", "--key", key)
    assert result.exit_code == 0, result.stderr
    assert "block 1 (payload) verified by BIB block 2 (HMAC-SHA512, source ipn:2.1)" in (
        result.stdout
    )


def test_encrypt_then_decrypt_then_verify(run: Run, plain: Path, tmp_path: Path) -> None:
    _sign(run)
    _encrypt(run, "signed.bundle", "sealed.bundle", "--aes", "256")
    sealed = read_bundle(tmp_path / "sealed.bundle")
    assert sealed.payload != b"hello from the field"
    assert sealed.first_block_of_type(BlockType.BLOCK_CONFIDENTIALITY) is not None
    shown = run("bundle", "inspect", "sealed.bundle")
    assert "encrypted by block" in shown.stdout
    result = run("bundle", "decrypt", "sealed.bundle", "--key", AES_KEY, "--out", "open.bundle")
    assert result.exit_code == 0, result.stderr
    assert read_bundle(tmp_path / "open.bundle") == read_bundle(tmp_path / "signed.bundle")
    assert run("bundle", "verify", "open.bundle", "--key", HMAC_KEY).exit_code == 0


def test_decrypt_with_a_wrong_key_fails(run: Run, plain: Path) -> None:
    _encrypt(run, "plain.bundle", "sealed.bundle")
    result = run("bundle", "decrypt", "sealed.bundle", "--key", "ff" * 32, "--out", "x.bundle")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("dtncloud: error: sealed.bundle: ")
    assert "reason 15" in line
    assert not Path("x.bundle").exists()


def test_decrypt_needs_a_bcb(run: Run, plain: Path) -> None:
    result = run("bundle", "decrypt", "plain.bundle", "--key", AES_KEY)
    assert result.exit_code == 1
    assert "nothing to decrypt" in one_error_line(result)


def test_a_fixed_iv_gives_the_same_output(run: Run, plain: Path, tmp_path: Path) -> None:
    _encrypt(run, "plain.bundle", "one.bundle", "--iv", "00" * 12)
    _encrypt(run, "plain.bundle", "two.bundle", "--iv", "00" * 12)
    _encrypt(run, "plain.bundle", "three.bundle")
    one = (tmp_path / "one.bundle").read_bytes()
    assert one == (tmp_path / "two.bundle").read_bytes()
    assert one != (tmp_path / "three.bundle").read_bytes()


def test_wrapped_keys_need_the_kek(run: Run, plain: Path, tmp_path: Path) -> None:
    _encrypt(run, "plain.bundle", "wrapped.bundle", "--kek", KEK, "--aes", "256")
    result = run("bundle", "decrypt", "wrapped.bundle", "--kek", KEK, "--out", "open.bundle")
    assert result.exit_code == 0, result.stderr
    assert read_bundle(tmp_path / "open.bundle") == read_bundle(plain)
    wrong = run("bundle", "decrypt", "wrapped.bundle", "--kek", "00" * 16, "--out", "x.bundle")
    assert wrong.exit_code == 1
    one_error_line(wrong)


def test_sign_with_a_wrapped_key(run: Run, plain: Path) -> None:
    _sign(run, "plain.bundle", "signed.bundle", "--kek", KEK)
    assert run("bundle", "verify", "signed.bundle", "--kek", KEK).exit_code == 0


def test_key_and_kek_together_are_a_usage_error(run: Run, plain: Path) -> None:
    result = run("bundle", "verify", "plain.bundle", "--key", HMAC_KEY, "--kek", KEK)
    assert result.exit_code == 2
    assert "--key" in one_error_line(result)
    neither = run("bundle", "decrypt", "plain.bundle")
    assert neither.exit_code == 2


@pytest.mark.parametrize(
    ("targets", "expected"),
    [("9", "no block number 9"), ("0", "primary block")],
)
def test_policy_errors_are_one_line(run: Run, plain: Path, targets: str, expected: str) -> None:
    result = run(
        "bundle",
        "encrypt",
        "plain.bundle",
        "--key",
        AES_KEY,
        "--target",
        targets,
        "--security-source",
        SOURCE,
    )
    assert result.exit_code == 1
    assert expected in one_error_line(result)


def test_a_short_aes_key_is_one_line(run: Run, plain: Path) -> None:
    result = run(
        "bundle",
        "encrypt",
        "plain.bundle",
        "--key",
        "00" * 5,
        "--target",
        "1",
        "--security-source",
        SOURCE,
    )
    assert result.exit_code == 1
    one_error_line(result)


def test_key_forms(run: Run, plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _sign(run)
    (tmp_path / "key.hex").write_text(HMAC_KEY + "\n")
    (tmp_path / "key.bin").write_bytes(bytes.fromhex(HMAC_KEY))
    monkeypatch.setenv("DTN_HMAC_KEY", HMAC_KEY)
    for form in ("@key.hex", "@key.bin", "env:DTN_HMAC_KEY", "0x" + HMAC_KEY.upper()):
        result = run("bundle", "verify", "signed.bundle", "--key", form)
        assert result.exit_code == 0, (form, result.stderr)


def test_a_raw_text_key_file_may_end_in_a_newline(
    run: Run, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    make_bundle("p.bundle")
    (tmp_path / "key.txt").write_text("qwertyuiopasdfgh\n")
    result = run(
        "bundle",
        "sign",
        "p.bundle",
        "--key",
        "@key.txt",
        "--target",
        "1",
        "--security-source",
        SOURCE,
        "--out",
        "t.bundle",
    )
    assert result.exit_code == 0, result.stderr
    check = run("bundle", "verify", "t.bundle", "--key", b"qwertyuiopasdfgh".hex())
    assert check.exit_code == 0, check.stderr


@pytest.mark.parametrize(
    ("key", "status", "expected"),
    [
        ("xyz", 2, "not a key"),
        ("abc", 2, "not a key"),
        ("env:NO_SUCH_VARIABLE_FOR_DTNCLOUD", 2, "is not set"),
        ("@missing.key", 1, "dtncloud: error: missing.key: no such file or directory"),
    ],
)
def test_bad_keys(run: Run, plain: Path, key: str, status: int, expected: str) -> None:
    result = run("bundle", "verify", "plain.bundle", "--key", key)
    assert result.exit_code == status
    assert expected in one_error_line(result)


def test_an_empty_key_file_is_refused(run: Run, plain: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.key").write_bytes(b"")
    result = run("bundle", "verify", "plain.bundle", "--key", "@empty.key")
    assert result.exit_code == 1
    assert "key file is empty" in one_error_line(result)


def test_missing_input_file(run: Run) -> None:
    result = run(
        "bundle",
        "sign",
        "nope.bundle",
        "--key",
        HMAC_KEY,
        "--target",
        "1",
        "--security-source",
        SOURCE,
    )
    assert result.exit_code == 1
    assert one_error_line(result) == "dtncloud: error: nope.bundle: no such file or directory"
