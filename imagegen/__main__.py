"""`python -m imagegen`: render from the shell, read a PNG's parameters, reproduce it."""

import sys

from .cli import main

sys.exit(main())
