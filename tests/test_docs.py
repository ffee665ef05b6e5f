"""The README and docs/ as a user reads them: short, free of development-machine history, every link
resolving, the CLI reference complete against the argument parsers, and the committed report answering
first."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
# Pages other people write; a link to one is allowed while it is still being written.
PENDING = {DOCS / "families.md"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md")), *sorted((REPO / "experiments").glob("**/README.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.M)}


def test_readme_is_a_front_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    history = re.findall(r"this VM|cold run|cold-run|steal|issue [0-9]|family 2[56]", text, re.I)
    assert not history, f"README.md tells the development machine's history: {history}"
    assert "Hutto" in text and "ICWSM 2014" in text  # the dataset's citation


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if dest in PENDING and not dest.exists():
            continue
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(REPO)})")
    assert not broken, f"{page.relative_to(REPO)}: broken links: {broken}"


def _cli_options() -> dict[str, list[str]]:
    """Every `slimbench` subcommand -> its option strings (hidden options excluded)."""
    from slimbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: [s for a in p._actions if a.help != argparse.SUPPRESS for s in a.option_strings
                   if s not in ("-h", "--help")] for name, p in sub.choices.items()}


def _plugin_options() -> list[str]:
    """The pytest plugin's options, as its pytest_addoption declares them (hidden ones excluded)."""
    from slimbench.plugin import pytest_addoption

    found: list[str] = []

    class Group:
        def addoption(self, *names: str, **kwargs: object) -> None:
            if kwargs.get("help") != argparse.SUPPRESS:
                found.extend(names)

    class Parser(Group):
        def getgroup(self, *args: object, **kwargs: object) -> Group:
            return Group()

        def addini(self, *args: object, **kwargs: object) -> None:
            pass

    pytest_addoption(Parser())  # type: ignore[arg-type]
    return found


def test_the_cli_reference_names_every_command_and_option():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    missing = []
    for command, options in _cli_options().items():
        if f"### `slimbench {command}`" not in text:
            missing.append(f"slimbench {command}: no section (### `slimbench {command}`)")
        missing += [f"slimbench {command} {o}" for o in options if o not in documented]
    missing += [f"pytest {o}" for o in _plugin_options() if o not in documented]
    assert not missing, "docs/cli.md does not document:\n  " + "\n  ".join(missing)


def test_the_committed_report_answers_first():
    lines = (REPO / "reports" / "REPORT.md").read_text(encoding="utf-8").splitlines()
    head = "\n".join(lines[:15])
    verdict = re.search(r"\*\*Ship `([^`]+)`\*\*: ([\d.]+)× faster .*?([\d.]+)× smaller .*?accuracy points \[95 % CI", head)
    assert verdict, "the ship verdict (variant, × faster, × smaller, accuracy change with its interval) is not " \
                    "within the first 15 lines of reports/REPORT.md"
    header = next(line for line in lines if line.startswith("|"))
    assert header.count("|") - 1 <= 10, f"the first table has {header.count('|') - 1} columns"
    assert "⚠ `" not in "\n".join(lines), "one noise line for the run, not a warning per row"


def test_the_readme_excerpt_is_the_committed_report():
    """The README's table and verdict are copied from reports/REPORT.md: re-render, then re-copy."""
    readme = README.read_text(encoding="utf-8")
    report = (REPO / "reports" / "REPORT.md").read_text(encoding="utf-8")
    rows = [line for line in readme.split("\n\n| family |")[0].splitlines() if line.startswith("|")]
    assert rows, "README.md shows no excerpt of the report"  # the family table below it is docs/families.md's
    stale = [line for line in rows if line not in report.splitlines()]
    assert not stale, f"README.md's excerpt differs from reports/REPORT.md: {stale[:3]}"
    ship = re.search(r"\*\*Ship `[^`]+`\*\*: [^(]+\([^)]+\)", readme)
    assert ship and ship.group(0) in report, "README.md's ship sentence differs from reports/REPORT.md's"
