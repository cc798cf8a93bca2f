"""Fails at import, as a plugin does whose compiled extension or dependency is missing."""

raise ImportError("mmsk_broken_plugin needs the native extension _fastconv, which is not built")


class BrokenEncoder:  # never reached; here so the listing can read `kinds` from the source
    kinds = ("image",)
