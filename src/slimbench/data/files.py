"""Reading a dataset file: it exists, is a file, is UTF-8; its lines ended by LF or CRLF only."""

from __future__ import annotations

from pathlib import Path

from slimbench.errors import DatasetError


def check_file(path: Path) -> None:
    if path.is_dir():
        raise DatasetError(f"dataset {path} is a directory; give a CSV, TSV or JSONL file")
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")


def read_text(path: Path) -> str:
    check_file(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"cannot read dataset file {path}: {err.strerror or err}") from None
    if not raw.strip():
        raise DatasetError(f"dataset file {path} is empty")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}: line {line} is not valid UTF-8 (byte {raw[err.start]:#04x} at offset {err.start})"
            " -- re-save the file as UTF-8"
        ) from err


def text_lines(content: str) -> list[str]:
    """Lines ended by LF or CRLF only. `str.splitlines()` also splits at U+2028, U+0085, form feed,
    vertical tab and more, which are valid characters inside a text."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
