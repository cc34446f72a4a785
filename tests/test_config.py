"""Config validation: every mistake is one line naming the key path."""

from __future__ import annotations

import pytest

from fedhex_hpc.cli import main
from fedhex_hpc.config import config_to_dict, load_config, parse_config
from fedhex_hpc.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "overrides", "message"),
    [
        (
            {"flow": {"hidden_units": [64, -3]}},
            (),
            "flow.hidden_units[1] must be a positive integer, got -3",
        ),
        ({"flow": {"n_blocks": "five"}}, (), "flow.n_blocks must be an integer, got 'five'"),
        ({"flow": {"n_block": 5}}, (), "unknown key flow.n_block (did you mean 'n_blocks'?)"),
        ({"flow": {"activation": "sigmoid"}}, (), "flow.activation must be one of 'relu'"),
        ({"train": {"learning_rate": 0}}, (), "train.learning_rate must be > 0, got 0"),
        ({"train": {"schedule": {"power": -1}}}, (), "train.schedule.power must be > 0"),
        ({"bogus": 1}, (), "unknown key bogus; valid keys: run, data, flow, train, evaluate"),
        ({"train": 3}, (), "train must be a mapping of keys, got 3"),
        ({}, ("flow.batch_norm=maybe",), "flow.batch_norm must be true or false, got 'maybe'"),
        ({}, ("flow.n_blocks",), "--set expects key.path=value"),
        ({"data": {"source": "file"}}, (), "data.path must name a file"),
    ],
)
def test_errors_name_the_key(raw, overrides, message):
    with pytest.raises(ConfigError) as info:
        parse_config(raw, overrides)
    text = str(info.value)
    assert text.startswith("config error: ")
    assert message in text
    assert "\n" not in text


def test_overrides_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("flow: {n_blocks: 3}\ntrain: {batch_size: 64}\n")
    config = load_config(path, ["train.batch_size=128", "flow.hidden_units=[8, 8]"])
    assert config.flow.n_blocks == 3
    assert config.train.batch_size == 128
    assert config.flow.hidden_units == [8, 8]
    assert parse_config(config_to_dict(config)) == config


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+ is not valid YAML"):
        load_config(bad)


def test_integers_are_accepted_as_floats():
    assert parse_config({"train": {"learning_rate": 1}}).train.learning_rate == 1.0


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file_is_an_error_pointing_at_braces(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "empty.yaml is empty" in message
    assert "write {} in it to train with every default" in message
    assert "\n" not in message
    path.write_text("{}\n")
    assert load_config(path) == parse_config({})


def test_a_path_that_is_not_a_regular_file(tmp_path):
    with pytest.raises(ConfigError, match=r"exists but is a directory, not a regular YAML file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match=r"/dev/null exists but is a character device"):
        load_config("/dev/null")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("- flow\n- train\n", "a list: ['flow', 'train']"),
        ("3\n", "a number: 3"),
        ("hi\n", "a string"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path, text, kind):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "c.yaml must map section names (run, data, flow, train, evaluate)" in message
    assert f"at the top level, got {kind}" in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["", "[1, 2]\n"])
def test_cli_train_rejects_an_empty_or_non_mapping_config(tmp_path, capsys, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error: config file ")
    assert "\n" not in err
    assert not (tmp_path / "run").exists()
