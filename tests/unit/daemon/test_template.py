"""The commented default configuration and ``dtncloud init``'s node directory."""

from __future__ import annotations

import dataclasses
import re
import stat
import tomllib
from pathlib import Path

import pytest

from dtncloud.daemon.config import (
    CONFIG_FILE_NAME,
    NodeConfig,
    default_config,
    load_config,
    parse_config,
)
from dtncloud.daemon.template import render_template, write_node_directory
from dtncloud.errors import ConfigError

NODE_IDS = ["dtn://relay/", "ipn:977.0", 'dtn://we"ird\\name/']


def parse(text: str, base_dir: Path) -> NodeConfig:
    return parse_config(tomllib.loads(text), source=None, base_dir=base_dir)


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_the_template_is_the_default_configuration(tmp_path: Path, node_id: str) -> None:
    assert parse(render_template(node_id), tmp_path) == default_config(tmp_path, node_id)


def test_the_template_with_a_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "var" / "dtn"
    text = render_template("ipn:5.0", data_dir)
    assert parse(text, tmp_path / "etc") == default_config(data_dir, "ipn:5.0")


def test_every_section_is_present(tmp_path: Path) -> None:
    data = tomllib.loads(render_template("dtn://a/"))
    sections = {"log", "store", "engine", "api", "metrics", "cla", "routing", "discovery"}
    assert sections <= set(data)
    # And everything else is written out, commented, for the reader.
    text = render_template("dtn://a/")
    for table in ("[[peer]]", "[[routing.route]]", "[cla.tls]", 'type = "udp"'):
        assert f"# {table}" in text


def test_uncommenting_a_default_changes_nothing(tmp_path: Path) -> None:
    # "# key = value" lines inside real sections claim to show the default: check the claim
    # by uncommenting all of them. Commented-out tables ("# [[peer]]") are examples instead.
    lines = []
    in_real_section = True
    uncommented = 0
    for line in render_template("dtn://a/").splitlines():
        if line.startswith("["):
            in_real_section = True
        elif line.startswith("# ["):
            in_real_section = False
        elif in_real_section and re.match(r"# [a-z_]+ = ", line):
            line = line[2:]
            uncommented += 1
        lines.append(line)
    assert uncommented >= 25
    assert parse("\n".join(lines), tmp_path) == default_config(tmp_path, "dtn://a/")


def test_the_examples_in_the_template_are_valid(tmp_path: Path) -> None:
    # The commented [[peer]] and [[routing.route]] blocks work once uncommented (TOML lets
    # both come after [discovery]).
    text = render_template("dtn://a/")
    for table in (r"\[\[peer\]\]", r"\[\[routing\.route\]\]"):
        block = re.search(rf"^# ({table}\n(?:# \w+ = .*\n)+)", text, re.MULTILINE)
        assert block is not None
        text += block[1].replace("# ", "")
    config = parse_config(tomllib.loads(text), source=None, base_dir=tmp_path)
    assert [peer.node_id for peer in config.peers] == ["dtn://neighbour/"]
    assert [route.via for route in config.routing.routes] == ["dtn://cloud/"]


# -- write_node_directory -----------------------------------------------------------------------


def test_write_node_directory(tmp_path: Path) -> None:
    directory = tmp_path / "nodes" / "relay"
    path = write_node_directory(directory, "dtn://relay/")
    assert path == directory / CONFIG_FILE_NAME
    assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0
    config = load_config(path)
    assert config.source == path
    assert dataclasses.replace(config, source=None) == default_config(directory, "dtn://relay/")


def test_the_node_directory_can_be_moved(tmp_path: Path) -> None:
    write_node_directory(tmp_path / "before", "ipn:3.0")
    (tmp_path / "before").rename(tmp_path / "after")
    config = load_config(tmp_path / "after")
    assert config.data_dir == tmp_path / "after"
    assert config.store.path == tmp_path / "after" / "store"


def test_an_existing_configuration_is_kept_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILE_NAME
    path.write_text("# mine\n")
    with pytest.raises(ConfigError) as info:
        write_node_directory(tmp_path, "dtn://relay/")
    assert str(info.value) == f"{path}: already exists; not overwriting it without force"
    assert path.read_text() == "# mine\n"
    assert write_node_directory(tmp_path, "dtn://relay/", force=True) == path
    assert load_config(path).node_id == "dtn://relay/"
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_FILE_NAME]


def test_a_bad_node_id_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dtncloud\.toml: node_id: "):
        write_node_directory(tmp_path / "node", "dtn://relay/inbox")
    assert not (tmp_path / "node").exists()


def test_a_file_in_the_way_of_the_directory(tmp_path: Path) -> None:
    (tmp_path / "node").write_text("")
    with pytest.raises(ConfigError, match="cannot create the directory"):
        write_node_directory(tmp_path / "node", "dtn://relay/")
