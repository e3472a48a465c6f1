import sys

from ilagent.cli import main

sys.exit(main())
