"""The click command layer: parse options, call one library function, print, choose the exit code."""
