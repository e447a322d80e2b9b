"""The Eventsim-compatible event generator (the producer image)."""
