"""``python -m halide_ionics.coupling.cli``: the same as the ``halide-ionics`` command."""
from halide_ionics.coupling.cli import console_main

console_main()
