"""Head-to-head benchmark: syncd against Syncthing and rsync, in the same run."""
