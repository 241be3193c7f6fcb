"""Benchmarks of the site's runtime against PyTorch: `python -m bench generate|translate|classify|all`."""
