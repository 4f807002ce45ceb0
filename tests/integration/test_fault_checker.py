"""tests/integration/test_fault_checker.py — runs the fault suite's own
tests with the integration tests (so scripts/test runs them): the checker
catches loss, duplication, unexpected and reordered messages
(tests/fault/test_checker.py), and the nemesis's schedule is a function of
its seed (tests/fault/test_nemesis_plan.py). Neither needs the binaries.
"""

import os
import sys

_FAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "fault")
if _FAULT not in sys.path:
    sys.path.insert(0, _FAULT)

from test_checker import CheckerTest  # noqa: E402,F401
from test_nemesis_plan import PlanTest  # noqa: E402,F401
