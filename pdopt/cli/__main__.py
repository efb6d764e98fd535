"""``python -m pdopt.cli``: the command line."""

import sys

from pdopt.cli import main

sys.exit(main())
