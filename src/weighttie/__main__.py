"""``python -m weighttie``: the command line (:func:`weighttie.cli.run`)."""

from weighttie.cli import run

if __name__ == "__main__":
    run()
