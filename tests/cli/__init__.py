"""Tests of the command lines (src/weighttie/cli.py, pre_commit_hook.py) and of what
only they use: output files, the terminal's status line, backend log lines."""
