"""The grid command runs only what has no result yet, and names an unknown grid in one line."""

import pytest

from bench.grid import GRIDS, missing
from core.errors import BenchError
from core.results import write_result


def test_existing_results_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEXBENCH_RESULTS", str(tmp_path))
    assert missing("chess", "cpu") == GRIDS[("chess", "cpu")]
    write_result("chess", "switch", "cpu", 0, {"coverage": 0.1}, {}, {}, {})
    write_result("chess", "moex", "cpu", 2, {"coverage": 0.1}, {}, {}, {})
    assert ("switch", 0) not in missing("chess", "cpu") and ("dense", 0) in missing("chess", "cpu")
    assert ("moex", 2) not in missing("chess", "cpu") and ("moex", 1) in missing("chess", "cpu")
    assert missing("chess", "short") == [("dense", 0), ("moex", 0)]


def test_an_unknown_grid_is_one_clear_error():
    with pytest.raises(BenchError, match="no grid for task 'chess' at preset 'paper'; grids: chess/cpu"):
        missing("chess", "paper")
