"""Camera dialects: each package maps one vendor's API, numbering and formats onto the Device
facade. Dialects never import each other."""
