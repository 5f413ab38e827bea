"""SANCHARi: road-network extraction from satellite and aerial imagery."""

__version__ = "0.1.0"
