"""`python -m ami_governance.cli`: the console script without installing the package."""

import sys

from ami_governance.cli import main

sys.exit(main())
