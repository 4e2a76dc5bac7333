#!/usr/bin/env python3
"""Summarise one CTest run from its JUnit file (ctest --output-junit).

usage: ctest_summary.py STEP JUNIT.xml   ->  prints failed and skipped tests (skips with the
                                        reason the test printed), then a last line
                                        "counts PASSED FAILED SKIPPED" for scripts/test.

CTest's own "N% tests passed" line counts a skipped test as passed; this does not.
A test that printed no reason for its skip is reported as such (a skip must say why).
A JUnit file that is missing or has no test case counts as one failure: a step that ran
no test has not passed.
"""
import re
import sys
import xml.etree.ElementTree as ET

SKIP_LINE = re.compile(r"^(?:TORGW-SKIP|SKIP): (.*)$", re.M)


def main():
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    step, path = sys.argv[1], sys.argv[2]
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"[{step}] FAILED: no CTest result ({e})")
        print("counts 0 1 0")
        return 0
    passed, failed, skipped = [], [], []
    for tc in root.iter("testcase"):
        name = tc.get("name")
        out = "".join(e.text or "" for e in tc.iter("system-out"))
        status = tc.get("status")
        if tc.find("failure") is not None or status == "fail":
            failed.append(name)
        elif tc.find("skipped") is not None or status in ("notrun", "disabled"):
            # CTest marks a test whose fixture setup failed "notrun" too, with its own
            # message: that is a failure, not a skip.
            msg = " ".join(e.get("message", "") for e in tc.iter("skipped"))
            reasons = sorted(set(m.strip() for m in SKIP_LINE.findall(out)))
            if "SKIP_RETURN_CODE" in msg or "SKIP_REGULAR_EXPRESSION" in msg or reasons:
                skipped.append((name, reasons or ["(the test printed no reason)"]))
            else:
                failed.append(f"{name} (not run: {msg.strip() or status})")
        else:
            passed.append(name)
    total = len(passed) + len(failed) + len(skipped)
    if total == 0:
        print(f"[{step}] FAILED: the run executed no test")
        print("counts 0 1 0")
        return 0
    for name in failed:
        print(f"[{step}] FAILED  {name}")
    for name, reasons in skipped:
        for r in reasons:
            print(f"[{step}] SKIPPED {name}: {r}")
    print(f"[{step}] {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
    print(f"counts {len(passed)} {len(failed)} {len(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
