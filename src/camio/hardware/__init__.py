"""Hardware drivers behind one small protocol: the simulator (default) and, later, GPIO."""
