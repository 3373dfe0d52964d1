"""halide_ionics.continuum"""
