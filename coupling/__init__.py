"""halide_ionics.coupling"""
