"""``python -m sweeps``: the same as the ``sweeps`` command."""

from sweeps.cli import main

if __name__ == "__main__":
    main()
