"""The PNCP domain: record shape and ID rules, the API client, and a local simulator of the API."""
