"""Domain logic as plain functions over models and resources. No Flask here."""
