"""tests/integration/test_fault_sites.py — the fault suite's tests that
start real nodes, run with the integration tests: scripts/sites and its
faults (tests/fault/test_sites.py) and shovel exactly-once through a full
disk and failing fdatasync (tests/fault/test_disk_faults.py; root only).
The seeded chaos runs are their own stage (scripts/chaos --quick).
"""

import os
import sys

_FAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "fault")
if _FAULT not in sys.path:
    sys.path.insert(0, _FAULT)

from test_disk_faults import DiskFaultTest  # noqa: E402,F401
from test_sites import SitesTest  # noqa: E402,F401
