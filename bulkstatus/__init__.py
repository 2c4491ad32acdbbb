"""bulkstatus: bulk customer status changes through Capillary's maker-checker API."""

__version__ = "0.1.0"
