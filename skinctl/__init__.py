"""skinctl: the admin console of a skincare-analysis ML data platform."""

__version__ = "0.1.0"
