"""halide_ionics.kmc"""
