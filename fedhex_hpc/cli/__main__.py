"""``python -m fedhex_hpc.cli``: the ``fedhex`` command."""

import sys

from fedhex_hpc.cli import main

sys.exit(main())
