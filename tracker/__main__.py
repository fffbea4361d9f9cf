"""Allow `python -m tracker`."""

import sys

from tracker.cli.commands import main

sys.exit(main())
