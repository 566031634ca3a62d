"""Sections of a model pack's MODEL_CARD.md, each owned by the command that measured it.

Shared by training (which writes the recipe and its own measurements) and evaluation
(`verity eval`, `verity calibrate`), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path


def with_section(text: str, title: str, body: str) -> str:
    """`text` with the section `title` holding `body`: replaced in place where present (a
    re-run does not reorder the card), else inserted before Limitations (or appended)."""
    section = f"{title}\n\n{body.strip()}\n"
    start = text.find(title + "\n")
    if start >= 0:
        end = text.find("\n## ", start + len(title))
        return text[:start] + section + (text[end:] if end >= 0 else "")
    anchor = text.find("## Limitations")
    if anchor < 0:
        return text.rstrip("\n") + "\n\n" + section
    return text[:anchor] + section + "\n" + text[anchor:]


def write_section(card_md: Path, title: str, body: str) -> None:
    card_md.write_text(with_section(card_md.read_text() if card_md.is_file() else "", title, body))
