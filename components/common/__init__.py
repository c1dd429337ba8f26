"""Helpers shared by the component packages."""
