"""Allow ``python -m kazoo_tail``."""

from kazoo_tail.cli import main

if __name__ == "__main__":
    main()
