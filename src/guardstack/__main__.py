import sys

from guardstack.cli import main

sys.exit(main())
