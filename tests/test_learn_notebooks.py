"""The learner's path (docs/learn/NN-name.md) opens as notebooks and keeps its conventions.

docs/learn/conftest.py runs every ``python`` block of every chapter (Sybil). These tests check
what running them does not: that jupytext reads each chapter into a notebook whose code cells
are exactly those blocks, in order (so the notebook a learner opens runs what CI runs); that
each chapter embeds its figure, links to handnet files that exist and ends with "Try this";
and, on its own, that the path has the chapters issue 16 asks for.
"""

import re
from pathlib import Path

import jupytext
import pytest
from sybil.document import Document
from sybil.parsers.markdown import PythonCodeBlockParser

LEARN = Path(__file__).resolve().parents[1] / "docs" / "learn"
CHAPTERS = sorted(LEARN.glob("[0-9][0-9]-*.md"))
MINIMUM_CHAPTERS = 14
FIGURE_BYTES = 200_000  # the conventions' bound for a committed figure

IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
LINK = re.compile(r"\]\((\.\./\.\./(?:handnet|tests)/[^)#\s]+)")
SAVEFIG = re.compile(r"savefig\(\s*[\"']([^\"']+)[\"']")

chapters = pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)


def python_blocks(chapter):
    """The chapter's python blocks as Sybil runs them, in order."""
    document = Document.parse(str(chapter), PythonCodeBlockParser())
    return [str(example.parsed) for example in document]


@chapters
def test_the_notebook_has_the_chapters_python_blocks_as_its_code_cells(chapter):
    blocks = [block.rstrip("\n") for block in python_blocks(chapter)]
    notebook = jupytext.read(chapter)
    cells = [cell.source.rstrip("\n") for cell in notebook.cells if cell.cell_type == "code"]
    assert blocks, f"{chapter.name} has no python block to run"
    assert cells == blocks


@chapters
def test_the_title_carries_the_chapters_number(chapter):
    number = int(chapter.name[:2])
    first_line = chapter.read_text(encoding="utf-8").splitlines()[0]
    assert re.fullmatch(rf"# {number}\. \S.*", first_line), first_line


@chapters
def test_the_chapter_draws_and_embeds_its_figure(chapter):
    text = chapter.read_text(encoding="utf-8")
    figure = f"figures/{chapter.stem}.png"
    embedded = IMAGE.findall(text)
    assert figure in embedded, f"{chapter.name} does not embed {figure}"
    for image in embedded:
        path = LEARN / image
        assert path.is_file(), f"{chapter.name} embeds {image}, which does not exist"
        assert path.stat().st_size < FIGURE_BYTES, f"{image}: {path.stat().st_size} bytes"
    saved = SAVEFIG.findall("\n".join(python_blocks(chapter)))
    assert f"{chapter.stem}.png" in saved, f"no python block saves {chapter.stem}.png"


@chapters
def test_the_chapter_links_to_handnet_files_that_exist(chapter):
    links = LINK.findall(chapter.read_text(encoding="utf-8"))
    assert any(link.startswith("../../handnet/") for link in links), (
        f"{chapter.name} links to no file of handnet"
    )
    missing = sorted({link for link in links if not (LEARN / link).resolve().exists()})
    assert not missing, f"{chapter.name} links to files that do not exist: {missing}"


@chapters
def test_the_chapter_has_try_this_prompts(chapter):
    text = chapter.read_text(encoding="utf-8")
    section = re.search(r"^## Try this\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"{chapter.name} has no '## Try this' section"
    prompts = re.findall(r"^(?:[-*+]|\d+\.) ", section.group(1), re.M)  # top-level items
    assert 3 <= len(prompts) <= 5, f"{chapter.name}: {len(prompts)} prompts, expected 3 to 5"


@chapters
def test_the_index_lists_the_chapter(chapter):
    index = (LEARN / "README.md").read_text(encoding="utf-8")
    assert f"]({chapter.name})" in index, f"docs/learn/README.md does not link {chapter.name}"


def test_the_path_has_at_least_14_chapters():
    names = [chapter.name for chapter in CHAPTERS]
    assert len(CHAPTERS) >= MINIMUM_CHAPTERS, (
        f"{len(CHAPTERS)} chapters in docs/learn, issue 16 asks for {MINIMUM_CHAPTERS}: {names}"
    )
