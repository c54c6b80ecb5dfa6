"""``python -m dendrite train ...``: see ``dendrite.cli``."""

import sys

from dendrite.cli import main

sys.exit(main())
