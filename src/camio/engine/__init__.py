"""The running device: the Device facade, event bus, rule runner and action registry."""
