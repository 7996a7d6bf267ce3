"""``python -m helpers.walks WALK.yaml [--out DIR] [--overwrite] [--no-progress]`` (see :mod:`helpers.walks.spec`)."""

from helpers.walks.spec import main

if __name__ == "__main__":
    raise SystemExit(main())
