"""What every Relance service shares: written once, used by all four."""
