"""`python -m bench [NAME ...]`: runs the benchmarks and prints the performance table."""

import importlib
import sys

from bench.core import Result, setup_django

BENCHMARKS: list[str] = ["ca", "reminders", "admin_search", "http_load", "auto_renew"]


def print_table(results: list[Result]) -> None:
    print()
    print(f"| {'measure':<58} | {'value':>12} | {'unit':<10} | {'target':<16} | met |")
    print(f"|{'-' * 60}|{'-' * 14}|{'-' * 12}|{'-' * 18}|-----|")
    for r in results:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        print(f"| {r.name:<58} | {r.value:>12.3f} | {r.unit:<10} | {r.target:<16} | {met:<3} |")
        if r.note:
            print(f"|   {r.note}")


def main(names: list[str]) -> int:
    setup_django()
    results: list[Result] = []
    for name in names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        print(f"running {name} ...", flush=True)
        results.extend(module.run())
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
