"""Print where a pass's time went, per folder of tests/, from pytest's JUnit XML report.

    python scripts/test_times.py REPORT.xml

Each test's time (setup, call and teardown) summed per folder (``tests/e2e``, ``tests/cli``, …),
with the number of tests; the folders' sum is worker time, more than the wall time of a parallel
pass. Used by scripts/test.sh after each pass.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from collections import defaultdict


def main(path: str) -> None:
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for case in ElementTree.parse(path).iter("testcase"):  # noqa: S314  (our pytest's own report)
        parts = (case.get("classname") or "").split(".")
        folder = "/".join(parts[:2]) if len(parts) > 2 else parts[0]
        seconds[folder] += float(case.get("time") or 0.0)
        counts[folder] += 1
    total = sum(seconds.values())
    print(f"== worker time per folder ({total / 60:.1f} worker-minutes in all)")
    for folder, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        share = 100 * spent / total
        print(f"   {folder:<22} {spent:7.0f} s  {share:3.0f}%  {counts[folder]} tests")


if __name__ == "__main__":
    main(sys.argv[1])
