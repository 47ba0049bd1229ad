import sys

from sampletool.cli import main

sys.exit(main())
