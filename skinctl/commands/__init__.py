"""Thin Typer sub-apps, one per command group: parse, call a service, render."""
