"""A custom device from a TOML file, simulated and plotted.

    python examples/03_device_from_toml.py [--quick] [--out DIR] [--config FILE.toml]

The TOML schema is in halide_ionics.continuum.config (every key optional; unknown keys are errors).
"""
import argparse
from pathlib import Path

from matplotlib.figure import Figure

from halide_ionics.continuum import load_config, simulate

TOML = """
[geometry]              # a longer gap, the junction 0.5 um off centre toward the Cl end
wire_length_um = 12.0
gap_um = 6.0
junction_offset_um = 0.5

[bias]                  # forward bias (Br side positive), 2 h
field_V_per_um = 3.0
duration_s = 7200.0

[solver]
nodes = 400
rtol = 1e-5
"""

p = argparse.ArgumentParser()
p.add_argument("--quick", action="store_true", help="coarser mesh, shorter run")
p.add_argument("--out", default="examples-out/device")
p.add_argument("--config", default=None, help="your own TOML (default: the one above)")
args = p.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
path = Path(args.config) if args.config else out / "device.toml"
if not args.config:
    text = TOML.replace("nodes = 400", "nodes = 150").replace("7200.0", "1800.0") if args.quick else TOML
    path.write_text(text)

cfg = load_config(path)
res = simulate(cfg)
print(f"status {res.status}; migration after {cfg.bias.duration_s / 3600:g} h: {res.final_migration_length_um:.3f} um")

z = res.mesh.z_um
fig = Figure(figsize=(8, 3.5))
a1, a2 = fig.subplots(1, 2)
for k in (0, len(res.times_s) // 2, len(res.times_s) - 1):
    a1.plot(z, res.x_br[k], label=f"{res.times_s[k] / 3600:.2f} h")
    a2.semilogy(z, res.x_v[k], label=f"{res.times_s[k] / 3600:.2f} h")
a1.set_ylabel("Br site fraction x_Br")
a2.set_ylabel("vacancy site fraction x_V")
for ax in (a1, a2):
    ax.set_xlabel("position along the wire (um)")
    ax.legend(fontsize=7)
fig.savefig(out / "device.png", dpi=120, bbox_inches="tight")
res.write_netcdf(out / "device.nc")
print(f"wrote {out}/device.png and device.nc")
