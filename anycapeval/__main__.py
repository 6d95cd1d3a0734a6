"""`python -m anycapeval ...`, the form launchers take: `torchrun --nproc_per_node N -m anycapeval run ...`."""

import sys

from .cli import main

sys.exit(main())
