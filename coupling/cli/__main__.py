"""``python -m halide_ionics.coupling.cli``: the same as the ``halide-ionics`` command."""
import sys

from halide_ionics.coupling.cli import main

sys.exit(main())
