import sys

from netspec.commands import main

sys.exit(main())
