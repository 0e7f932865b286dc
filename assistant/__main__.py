"""`python -m assistant`: write an episode's or a season's SDXL prompts and show how they were made."""

import sys

from .cli import main

sys.exit(main())
