"""Measured sections written into a model card (`--write-card`)."""

from agent.evaluation.card_sections import with_section

CARD = "# Card\n\n## A\n\nold a\n\n## B\n\nb\n\n## Limitations\n\n- x\n"


def test_a_rewritten_section_keeps_its_place():
    assert with_section(CARD, "## A", "new a") == CARD.replace("old a", "new a")
    assert with_section("# Card\n\n## A\n\nold\n", "## A", "new") == "# Card\n\n## A\n\nnew\n"


def test_a_new_section_goes_before_limitations_or_at_the_end():
    assert with_section(CARD, "## C", "c") == CARD.replace("## Limitations", "## C\n\nc\n\n## Limitations")
    assert with_section("# Card\n", "## C", "c") == "# Card\n\n## C\n\nc\n"
