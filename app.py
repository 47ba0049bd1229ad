"""Start the Sample Tool desktop app: `python app.py [--library DIR] [--model DIR]`."""

import sys

from ui.app import main

if __name__ == "__main__":
    sys.exit(main())
