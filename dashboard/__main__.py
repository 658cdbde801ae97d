"""``python -m dashboard`` is the ``dashboard`` command."""

import sys

from .cli import main

sys.exit(main())
