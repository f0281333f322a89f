#!/usr/bin/env python3
"""Write completions/ from the live CLI. `--check` exits 1 when a file is out of date."""

from __future__ import annotations

import sys
from pathlib import Path

from mfproj.cli.completion import FILES, generate

ROOT = Path(__file__).resolve().parent.parent / "completions"


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for shell, filename in FILES.items():
        path = ROOT / filename
        text = generate(shell)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run: python scripts/gen_completions.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
