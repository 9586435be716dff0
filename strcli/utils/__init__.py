"""Plumbing every room uses: errors and exit codes, progress, locks, overlapped I/O, devices."""
