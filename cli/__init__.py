"""The `listenwell` command line."""
