"""``halide-ionics study NAME``: the paper's supplementary studies, low field and temperature
(logic in :mod:`halide_ionics.coupling.studies`)."""
from halide_ionics.coupling.studies import HELP, add_arguments, cli_run as run  # noqa: F401
from halide_ionics.coupling import studies as _s

DESCRIPTION = _s.__doc__
