"""Thin click commands (parse, call one library function, print, exit code), imported lazily by cli.py."""
