"""``python -m sanchari_processes.cli``: the ``sanchari`` command."""

import sys

from sanchari_processes.cli import main

sys.exit(main())
