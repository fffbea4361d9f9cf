"""Closing the loop (SPEC.md §11): notices emitted once, then dispatched in order to every target."""
