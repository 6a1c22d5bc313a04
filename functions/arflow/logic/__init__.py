"""Domain logic in plain, typed Python: no AWS calls here, only through the adapters in dal/."""
