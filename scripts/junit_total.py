"""Add up test reports and print one closing line: 'tests: N passed, N failed, N skipped'.

Reports: JUnit XML files (pytest, Maven Surefire) and, after ``--go``, the output of ``go test -v``
(its ``--- PASS/FAIL/SKIP`` lines, subtests included). Exits 1 when a report is missing, something
failed or nothing ran, so an empty run never passes.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

GO_RESULT = re.compile(r"^\s*--- (PASS|FAIL|SKIP): ", re.M)


def go_totals(text: str) -> dict[str, int]:
    results = GO_RESULT.findall(text)
    return {
        "tests": len(results),
        "failures": results.count("FAIL"),
        "errors": 0,
        "skipped": results.count("SKIP"),
    }


def main(args: list[str]) -> int:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    paths, go_reports = args, []
    if "--go" in args:
        at = args.index("--go")
        paths, go_reports = args[:at], args[at + 1 :]
    for path in go_reports:
        if not Path(path).is_file():
            print(f"missing test report {path}", file=sys.stderr)
            return 1
        for key, count in go_totals(Path(path).read_text(errors="replace")).items():
            totals[key] += count
    for path in paths:
        if not Path(path).is_file():
            print(f"missing test report {path}", file=sys.stderr)
            return 1
        root = ET.parse(path).getroot()
        for suite in root.iter("testsuite"):
            for key in totals:
                totals[key] += int(suite.get(key, 0))
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(f"tests: {passed} passed, {failed} failed, {totals['skipped']} skipped")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
