"""CLI commands for screen_cli (filled in by issue 5 work); importing this module registers them on the app."""
