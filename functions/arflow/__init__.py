"""arflow: credit control and collections, one lifecycle per invoice."""
