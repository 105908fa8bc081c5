"""``python -m sync.cli``: the console script without the installed entry point (the daemon's tests and benches)."""

from __future__ import annotations

import sys

from sync.cli.root import main

sys.exit(main())
