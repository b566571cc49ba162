import sys

from metaval.cli import main

sys.exit(main())
