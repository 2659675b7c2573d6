"""Planner (pure) and executor: the only code that writes into the sync folder."""
