"""fimpack.packing."""
