"""``halide-ionics study NAME``: the paper's supplementary studies, low field and temperature
(logic in :mod:`halide_ionics.coupling.studies`)."""
from halide_ionics.coupling.studies import HELP, add_arguments, cli_run as run  # noqa: F401

DESCRIPTION = ("Run one of the paper's supplementary studies (s11-s16), the low-field regime or the temperature "
               "study, in either electrode mode, reusing the cached KMC tables and device runs. Writes NAME.nc "
               "(runs), PNG figures and NAME.json (numbers, each with its kind, and the paper's claims as targets) "
               "into --out. 'halide-ionics study --list' names the studies.")
