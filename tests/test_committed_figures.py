"""Every committed figure is what `make figures` draws from the committed results: its tables (.md,
.csv) and its caption (.txt, which names the results and their git shas) must match what the figure
code writes now, and no committed figure may be one that code no longer draws. The images are not
compared byte for byte: their bytes depend on the plotting library's build, their content on the same
results the captions name."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT = (".md", ".csv", ".txt")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """The figures folder `make figures` writes from a copy of the committed results without it."""
    from analysis.figures import make_figures

    results = tmp_path_factory.mktemp("results")
    for task in ("chess", "language", "superposition"):
        shutil.copytree(ROOT / "results" / task, results / task)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOEXBENCH_RESULTS", str(results))
        make_figures()
    return results / "figures"


def _committed() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "results/figures"], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    return [Path(line) for line in listed.stdout.splitlines()]


def test_every_committed_figure_is_one_make_figures_draws(drawn):
    assert {p.name for p in _committed()} == {p.name for p in drawn.iterdir()}, (
        "results/figures/ differs from what `make figures` draws; run it and commit what it writes")


def test_every_committed_table_and_caption_is_what_make_figures_writes(drawn):
    stale = [p.name for p in _committed() if p.suffix in TEXT
             and (ROOT / p).read_text() != (drawn / p.name).read_text()]
    assert not stale, f"{', '.join(stale)}: not what `make figures` writes now; run it and commit the files"
