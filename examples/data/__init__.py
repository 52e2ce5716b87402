"""The demo's bundled data (see README.md here): importable as ``servewatch.demo.data`` so an installed
servewatch finds it with ``importlib.resources``."""
