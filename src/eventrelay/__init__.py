"""eventrelay: self-hosted server-side event delivery."""

__version__ = "0.1.0"
