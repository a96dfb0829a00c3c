"""`python -m drol_diag.cli ...` runs the command line."""

import sys

from drol_diag.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
