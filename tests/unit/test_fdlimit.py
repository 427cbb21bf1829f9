"""The descriptor budget is the process's: agents in one process share it (host/fdlimit.py)."""

from __future__ import annotations

from cgwatch.host.fdlimit import FdBudget
from cgwatch.host.keptfiles import KeptFiles


def test_every_caller_in_a_process_gets_the_same_budget():
    # Two agents in one process (the suite, bench/trace_opens.py) each kept the whole limit's worth
    # of descriptors and the process hit EMFILE.
    assert FdBudget.for_process() is FdBudget.for_process()


def test_closed_kept_files_leave_the_budget_and_are_not_asked_to_shed():
    budget = FdBudget(1)

    class Counting(KeptFiles):
        asked = 0

        def shed(self, n: int) -> int:
            Counting.asked += 1
            return super().shed(n)

    kept = Counting(budget)
    kept.close()
    assert budget.take(1)
    assert not budget.take(1)  # full: shed is tried, but not on the closed kept files
    assert Counting.asked == 0
