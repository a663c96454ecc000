"""``python -m bot`` behaves exactly like ``careerbot``."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
