"""pncp_assets: Brazil's PNCP procurement feed into a deduplicated Bronze layer of Parquet files."""

__version__ = "0.1.0"
