#!/usr/bin/env python3
"""Prints scripts/test's timing table: each phase (setup, each preset's build,
each label's tests; a "total" line, when present, is the wall-clock time of a
run whose phases overlapped) and the ten slowest tests, from the phase list scripts/test
wrote and the JUnit files ctest wrote.

Usage: test-timings.py PHASES_TSV JUNIT_DIR
"""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60):3d}m{seconds % 60:05.1f}s"


def main() -> int:
    phases_file, junit_dir = Path(sys.argv[1]), Path(sys.argv[2])
    phases = []
    wall = None  # the whole run, when phases overlap (a build beside tests)
    for line in phases_file.read_text().splitlines():
        name, _, secs = line.partition("\t")
        if name == "total":
            wall = float(secs)
        else:
            phases.append((name, float(secs)))

    tests = []
    for xml in sorted(junit_dir.glob("*.xml")):
        preset = xml.stem.split("-", 1)[0]
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError:
            continue
        for case in root.iter("testcase"):
            failed = case.find("failure") is not None or case.get("status") == "fail"
            tests.append((float(case.get("time", 0)), preset, case.get("name", "?"), failed))

    width = max([len(n) for n, _ in phases] + [10])
    print()
    print("=== where the time went")
    print(f"{'phase':<{width}}  {'time':>10}")
    for name, secs in phases:
        print(f"{name:<{width}}  {minutes(secs)}")
    total = wall if wall is not None else sum(s for _, s in phases)
    print(f"{'total':<{width}}  {minutes(total)}")
    if tests:
        print()
        print("=== the ten slowest tests")
        for secs, preset, name, failed in sorted(tests, reverse=True)[:10]:
            mark = "  FAILED" if failed else ""
            print(f"{minutes(secs)}  {preset:<7}  {name[:100]}{mark}")
        failed = [t for t in tests if t[3]]
        print()
        print(f"{len(tests)} tests run, {len(failed)} failed")
        for secs, preset, name, _ in failed:
            print(f"  FAILED  {preset:<7}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
