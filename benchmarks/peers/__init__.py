"""Side-by-side benchmark of infocus against CAREamics (see README.md in this folder)."""
