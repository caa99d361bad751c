#!/usr/bin/env python3
"""Adds up the test cases of one `meson test` run for tools/test.sh.

    tools/test_counts.py BUILD/meson-logs/testlog.json

Each test program of the suite prints "ringside-test-counts: P passed, F failed, S
skipped" as its last line; meson keeps that output in testlog.json, one JSON object a
test. The counts are checked against meson's result for the test (the rule is in
docs/testing.md and at the top of tools/test.sh). Prints one line per test with skips,
failures or counts that disagree with meson, then "PASSED FAILED SKIPPED" as the last
line. Python standard library only.
"""

import json
import re
import sys

COUNTS = re.compile(r"^ringside-test-counts: (\d+) passed, (\d+) failed, (\d+) skipped\s*$",
                    re.MULTILINE)


def count_test(result, output):
    """(passed, failed, skipped, note) for one meson test: its result (OK, SKIP, FAIL,
    ...) and its output. note says where the counts and meson's result disagree."""
    found = COUNTS.findall(output or "")
    if result == "EXPECTEDFAIL":
        return 1, 0, 0, ""
    if not found:
        if result == "OK":
            return 1, 0, 0, ""
        if result == "SKIP":
            return 0, 0, 1, ""
        return 0, 1, 0, ""
    passed, failed, skipped = (int(x) for x in found[-1])
    if result == "OK":
        if passed + failed + skipped == 0:
            return 0, 1, 0, "meson says OK but the test counted nothing"
        note = "meson says OK but the test counted failures" if failed else ""
        return passed, failed, skipped, note
    if result == "SKIP":
        note = "meson says SKIP but the test counted passes or failures" if passed or failed else ""
        return 0, 0, max(skipped, 1), note
    return passed, max(failed, 1), skipped, ""


def main():
    totals = [0, 0, 0]
    with open(sys.argv[1]) as log:
        for line in log:
            if not line.strip():
                continue
            test = json.loads(line)
            output = (test.get("stdout") or "") + (test.get("stderr") or "")
            passed, failed, skipped, note = count_test(test["result"], output)
            totals = [totals[0] + passed, totals[1] + failed, totals[2] + skipped]
            if failed or skipped or note:
                print(f"  {test['name']} ({test['result']}): {passed} passed, {failed} failed, "
                      f"{skipped} skipped" + (f"; {note}" if note else ""))
    print(*totals)


if __name__ == "__main__":
    main()
