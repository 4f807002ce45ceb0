#!/usr/bin/env python3
"""tests/integration/run.py — run the integration tests (test_*.py here)
against the binaries in FEDQ_BUILD (default build/).

    python3 tests/integration/run.py [-k PATTERN] [--failfast] [MODULE...]

Exits 0 when every test passed (skips allowed), 1 otherwise, 3 when the
whole run passed its deadline (FEDQ_IT_DEADLINE seconds, default 900).
The last line is a summary: "integration: N passed, N failed, N skipped".
"""

import argparse
import faulthandler
import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def watchdog(seconds):
    """End the run if it outlives its deadline: dump every thread's stack,
    kill every process the harness started, exit 3."""
    def fire():
        sys.stderr.write("\nintegration: deadline of %ds passed; stopping\n"
                         % seconds)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        harness.kill_all()
        sys.stderr.flush()
        sys.stdout.write("integration: run stopped at its deadline\n"
                         "integration: 0 passed, 1 failed\n")
        sys.stdout.flush()
        os._exit(3)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*",
                    help="test modules (test_smoke) or ids "
                         "(test_smoke.SmokeTest.test_publish_consume)")
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only tests whose name contains this substring")
    ap.add_argument("--failfast", action="store_true")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()

    deadline = int(os.environ.get("FEDQ_IT_DEADLINE", "900"))
    watchdog(deadline)

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in args.patterns]
    if args.modules:
        suite = loader.loadTestsFromNames(
            [m[:-3] if m.endswith(".py") else m for m in
             (os.path.basename(x) for x in args.modules)])
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)

    print("integration: FEDQ_BUILD=%s (node %s, client %s)" % (
        harness.build_dir(),
        "found" if os.access(harness.node_bin(), os.X_OK) else "MISSING",
        "found" if os.access(harness.client_bin(), os.X_OK) else "MISSING"))
    sys.stdout.flush()

    t0 = time.monotonic()
    runner = unittest.TextTestRunner(verbosity=1 if args.quiet else 2,
                                     failfast=args.failfast, stream=sys.stdout)
    result = runner.run(suite)
    harness.kill_all()

    # A test can fail twice (its body, then tearDown): count tests, not
    # reports.
    failed_ids = {t.id() for t, _ in result.failures + result.errors}
    failed_ids |= {t.id() for t in getattr(result, "unexpectedSuccesses",
                                            [])}
    skipped_ids = {t.id() for t, _ in result.skipped} - failed_ids
    failed = len(failed_ids)
    skipped = len(skipped_ids)
    passed = max(0, result.testsRun - failed - skipped)
    print("integration: %d tests in %.1fs against %s" % (
        result.testsRun, time.monotonic() - t0, harness.build_dir()))
    print("integration: %d passed, %d failed, %d skipped" % (
        passed, failed, skipped))
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
