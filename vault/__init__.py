"""cvault: a secret store with privilege-separating macaroon caveats."""

__version__ = "0.1.0"
