"""``python -m colbert_plugins.cli``: the command line."""

import sys

from . import main

sys.exit(main())
