"""Backends that put a sweep's trials onto hardware. Nothing above this package knows which one runs."""
