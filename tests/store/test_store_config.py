"""ConfigStore and the YAML helpers: revisions, conflicts, backups and readable errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pydantic
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from camio.store.config_store import (
    MAX_DOCUMENT_BYTES,
    ConfigFileError,
    ConfigStore,
    RevisionConflict,
    dump_yaml,
    format_validation_error,
    load_yaml_text,
)


class InputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    debounce_on_ms: int = Field(default=50, ge=0)
    debounce_off_ms: int = Field(default=50, ge=0)


class DeviceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = "camio"
    inputs: list[InputConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def unique_names(self) -> DeviceConfig:
        names = [i.name for i in self.inputs]
        if len(names) != len(set(names)):
            raise ValueError("input names must be unique")
        return self


def doc(title: str = "camio") -> DeviceConfig:
    return DeviceConfig(title=title, inputs=[InputConfig(name="Tür 1", debounce_on_ms=20)])


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore[DeviceConfig]:
    return ConfigStore(tmp_path / "config.yaml", DeviceConfig)


def test_missing_file_is_file_not_found(store: ConfigStore[DeviceConfig]) -> None:
    with pytest.raises(FileNotFoundError):
        store.load()


def test_save_load_and_revision_bump(store: ConfigStore[DeviceConfig]) -> None:
    assert store.save(doc("first")) == 1
    assert store.load() == (doc("first"), 1)
    assert store.save(doc("second"), expected_revision=1) == 2
    assert store.save(doc("third")) == 3
    assert store.load() == (doc("third"), 3)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    text = store.path.read_text(encoding="utf-8")
    assert text.startswith("#")
    data = yaml.safe_load(text)
    assert list(data) == ["revision", "title", "inputs"]  # revision first, then field order
    assert "Tür 1" in text  # unicode written as is


def test_previous_file_kept_as_bak(store: ConfigStore[DeviceConfig]) -> None:
    store.save(doc("first"))
    assert not store.backup_path.exists()
    store.save(doc("second"))
    backup = yaml.safe_load(store.backup_path.read_text(encoding="utf-8"))
    assert backup["revision"] == 1
    assert backup["title"] == "first"
    assert sorted(os.listdir(store.path.parent)) == [
        "config.yaml",
        "config.yaml.bak",
        "config.yaml.lock",
    ]


def test_revision_conflict_leaves_file_alone(store: ConfigStore[DeviceConfig]) -> None:
    store.save(doc("first"))
    store.save(doc("second"))
    before = store.path.read_bytes()
    with pytest.raises(RevisionConflict) as info:
        store.save(doc("stale edit"), expected_revision=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert store.path.read_bytes() == before


def test_expected_revision_zero_means_no_file_yet(store: ConfigStore[DeviceConfig]) -> None:
    assert store.save(doc(), expected_revision=0) == 1
    with pytest.raises(RevisionConflict):
        store.save(doc(), expected_revision=0)


def test_hand_written_file_without_revision(store: ConfigStore[DeviceConfig]) -> None:
    store.path.write_text("title: by hand\ninputs:\n  - name: a\n", encoding="utf-8")
    loaded, revision = store.load()
    assert (loaded.title, loaded.inputs[0].debounce_on_ms, revision) == ("by hand", 50, 0)
    assert store.save(loaded, expected_revision=0) == 1


def test_invalid_document_names_each_field(store: ConfigStore[DeviceConfig]) -> None:
    store.path.write_text(
        "revision: 4\n"
        "title: x\n"
        "colour: red\n"
        "inputs:\n"
        "  - name: a\n"
        "    debounce_on_ms: -1\n"
        "  - debounce_off_ms: fast\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigFileError) as info:
        store.load()
    assert sorted(info.value.messages) == [
        "colour: Extra inputs are not permitted",
        "inputs.0.debounce_on_ms: Input should be greater than or equal to 0",
        "inputs.1.debounce_off_ms: Input should be a valid integer,"
        " unable to parse string as an integer",
        "inputs.1.name: Field required",
    ]
    assert str(store.path) in str(info.value)
    assert "inputs.0.debounce_on_ms" in str(info.value)


def test_model_validator_error_is_located_at_the_document() -> None:
    with pytest.raises(ConfigFileError) as info:
        load_yaml_text("inputs: [{name: a}, {name: a}]", DeviceConfig)
    assert info.value.messages == ["(document): input names must be unique"]


def test_format_validation_error_prefix() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        DeviceConfig.model_validate({"inputs": [{"name": "a", "debounce_on_ms": -5}]})
    assert format_validation_error(info.value, prefix="body") == [
        "body.inputs.0.debounce_on_ms: Input should be greater than or equal to 0"
    ]
    with pytest.raises(pydantic.ValidationError) as info:
        DeviceConfig.model_validate({"inputs": [{"name": "a"}, {"name": "a"}]})
    assert format_validation_error(info.value, prefix="body.") == [
        "body: input names must be unique"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text", "not a str"),
        ("title: [unclosed\n", "line 2"),
        ("title: a\ntitle: b\n", "line 2, column 1: duplicate key 'title'"),
        ("revision: two\ntitle: a\n", "revision: must be a whole number"),
        ("revision: -1\n", "revision: must be a whole number"),
    ],
)
def test_bad_yaml_gets_a_clear_message(text: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_yaml_text(text, DeviceConfig)
    assert expected in info.value.messages[0]


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    with pytest.raises(ConfigFileError, match="expands to more than"):
        load_yaml_text("\n".join(lines), DeviceConfig)


def test_merge_keys_still_work() -> None:
    text = "defaults: &d {debounce_on_ms: 5}\n"
    loaded = yaml.load(text + "x: {<<: *d, debounce_on_ms: 7}", Loader=yaml.SafeLoader)
    assert loaded["x"]["debounce_on_ms"] == 7
    with pytest.raises(ConfigFileError, match="defaults: Extra inputs"):
        load_yaml_text(text + "inputs: [{<<: *d, name: a, debounce_on_ms: 7}]", DeviceConfig)
    parsed = load_yaml_text("inputs: [{name: a, <<: {debounce_on_ms: 5}}]", DeviceConfig)
    assert parsed.inputs[0].debounce_on_ms == 5


def test_huge_documents_are_refused(store: ConfigStore[DeviceConfig]) -> None:
    huge = "title: " + "x" * MAX_DOCUMENT_BYTES + "\n"
    with pytest.raises(ConfigFileError, match="larger than"):
        load_yaml_text(huge, DeviceConfig)
    store.path.write_text(huge, encoding="utf-8")
    with pytest.raises(ConfigFileError, match="larger than"):
        store.load()


def test_not_utf8_is_refused(store: ConfigStore[DeviceConfig]) -> None:
    store.path.write_bytes(b"title: \xff\xfe\n")
    with pytest.raises(ConfigFileError, match="not UTF-8"):
        store.load()


def test_export_import_round_trip() -> None:
    original = DeviceConfig(
        title='quotes " and: colons, yes/no',
        inputs=[InputConfig(name="yes"), InputConfig(name="ドア", debounce_off_ms=0)],
    )
    text = dump_yaml(original)
    assert "revision" not in text
    assert load_yaml_text(text, DeviceConfig) == original
    with_revision = dump_yaml(original, revision=9)
    assert with_revision.startswith("revision: 9\n")
    assert load_yaml_text(with_revision, DeviceConfig) == original


def test_invalid_document_is_not_saved(store: ConfigStore[DeviceConfig]) -> None:
    store.save(doc("good"))
    bad = DeviceConfig.model_construct(title="bad", inputs=[InputConfig(name="a")] * 2)
    with pytest.raises(ConfigFileError, match="unique"):
        store.save(bad)
    assert store.load() == (doc("good"), 1)


def test_broken_file_is_replaced_and_kept_as_backup(store: ConfigStore[DeviceConfig]) -> None:
    store.path.write_text("title: [broken\n", encoding="utf-8")
    with pytest.raises(ConfigFileError):
        store.load()
    assert store.save(doc(), expected_revision=3) == 4
    assert store.load() == (doc(), 4)
    assert store.backup_path.read_text(encoding="utf-8") == "title: [broken\n"


def test_reserved_revision_field_is_refused(tmp_path: Path) -> None:
    class Bad(BaseModel):
        revision: int = 0

    with pytest.raises(ValueError, match="reserved"):
        ConfigStore(tmp_path / "c.yaml", Bad)


def test_existing_file_mode_is_kept(store: ConfigStore[DeviceConfig]) -> None:
    store.save(doc())
    store.path.chmod(0o640)
    store.save(doc())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o640
