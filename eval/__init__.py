"""Offline evaluation of the site's models (not needed by the Space)."""
