"""Training and evaluation of the shipped shapes model (assets/shapes-sd)."""
