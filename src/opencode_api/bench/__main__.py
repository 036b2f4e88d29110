"""``python -m opencode_api.bench``: the same as ``opencode-api bench``."""

import sys

from opencode_api.bench._cli import main

if __name__ == "__main__":
    sys.exit(main())
