"""`python -m mfproj`: the same entry point as the `mfproj` command."""

from mfproj.cli import main

if __name__ == "__main__":
    main()
