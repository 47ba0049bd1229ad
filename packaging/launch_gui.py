"""The app bundle's entry point (PyInstaller runs this script as the executable).

`sampletool-gui -m MODULE ARGS...` runs a module of the bundle as `python -m` would: the app
starts its training process that way (`sys.executable -m sampletool.training.run_process ...`),
and it gives the bundle its command line (`sampletool-gui -m sampletool classify FILES`).
"""

import multiprocessing
import runpy
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # decode workers re-enter here in a frozen app
    args = sys.argv[1:]
    if args[:1] == ["-u"]:  # unbuffered, as python -u: the app reads the process's lines live
        args = args[1:]
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(write_through=True)
    if len(args) > 1 and args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        sys.exit(0)
    from ui.app import main

    sys.exit(main())
