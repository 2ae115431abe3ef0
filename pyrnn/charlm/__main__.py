"""``python -m pyrnn.charlm``: the same as the ``pyrnn-charlm`` console script."""
from .cli import main

raise SystemExit(main())
