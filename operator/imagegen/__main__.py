"""`python -m imagegen` is the `imagegen` command."""

import sys

from imagegen import cli

sys.exit(cli.main())
