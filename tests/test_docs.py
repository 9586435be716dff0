"""The README (short, and true to CI) and the documentation site (mkdocs.yml, docs/): the site
builds with warnings as errors and its links checked, so a broken link or anchor, or a page
left out of the navigation, fails; the README's own links to docs/ land on pages and headings
that exist."""
import html.parser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def _mkdocs():
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it is in the dev extra: pip install -e '.[dev]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (dev extra)")


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    _mkdocs()
    site = tmp_path_factory.mktemp("site")
    built = _build(REPO, site)
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    return site


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name == "id" and value)


def _ids(page: Path) -> set[str]:
    parser = _Ids()
    parser.feed(page.read_text())
    return parser.ids


def test_the_site_builds_with_no_warning(site):
    assert (site / "index.html").is_file()
    for page in ("install", "reconstruct", "outputs", "exit-codes", "reliability", "performance",
                 "reproducing", "model", "export", "view", "weights"):
        assert (site / page / "index.html").is_file(), page
    assert "pytorch-builds" in _ids(site / "install" / "index.html")


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    _mkdocs()
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    page = root / "docs" / "install.md"
    text = page.read_text()
    page.write_text(text + "\nSee [nowhere](no-such-page.md).\n")
    missing = _build(root, tmp_path / "site1")
    assert missing.returncode != 0 and "no-such-page.md" in missing.stderr
    page.write_text(text + "\nSee [the outputs](outputs.md#no-such-heading).\n")
    anchor = _build(root, tmp_path / "site2")
    assert anchor.returncode != 0 and "no-such-heading" in anchor.stderr
    page.write_text(text)
    (root / "docs" / "orphan.md").write_text("# Not in the nav\n")
    orphan = _build(root, tmp_path / "site3")
    assert orphan.returncode != 0 and "orphan.md" in orphan.stderr


def test_the_readme_is_short_and_its_links_to_docs_land(site):
    words = len(README.split())
    assert words <= 1500, f"README has {words} words: move detail to a docs/ page"
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", README)
    assert len(links) >= 15
    for target, anchor in links:
        assert (REPO / target).is_file(), target
        if target.endswith(".md") and anchor:
            page = site / ("" if target == "docs/index.md" else target[5:-3]) / "index.html"
            assert anchor in _ids(page), f"{target}#{anchor}"
    # The pages other sessions fill in are linked from the README's "More" list.
    for page in ("world", "video-input", "damaged-input", "using-exports"):
        assert f"(docs/{page}.md)" in README


def test_the_readme_set_up_is_what_ci_runs():
    block = README.split("## Set up", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert 'pip install -e ".[dev]"' in commands and "python -m pytest -q" in commands
    # The main job gives real bodies: the published TCMR weights, not a random network.
    assert "strcli reconstruct --example -o out/ --model tcmr --render" in commands
    assert not any("--untrained" in c for c in commands)
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]"' in ci and "\npython -m pytest -q\n" in ci
    assert "mkdocs build --strict" in ci
    pyproject = (REPO / "pyproject.toml").read_text()
    dev = re.search(r"^dev = \[(.*)\]$", pyproject, re.M).group(1)
    assert '"mkdocs' in dev and '"mkdocs-material' in dev
