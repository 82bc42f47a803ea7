"""The server's command line: the transport's startup check, then Daphne with this project's transport.

Run it like daphne itself: `python -m realtime.server -b 127.0.0.1 -p 8000 paperpipeline.asgi:application`"""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Set up Django, check the transport's dependencies, then run Daphne with the command line's arguments; once
    the server runs, the start-up heap is frozen out of the garbage collector and full collections wait for quiet
    moments (realtime.gctune)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")
    import django

    django.setup()
    from . import gctune
    from .transport import daphne as transport

    gctune.install()

    try:
        transport.check_installation()
    except transport.TransportMismatch as exc:
        sys.exit(str(exc))  # the message, and exit status 1, instead of a traceback
    # Frozen once listening: Django, the modules and the application loaded by Daphne's CLI are all in.
    transport.run(list(sys.argv[1:] if argv is None else argv), when_running=started)


def started() -> None:
    """Once the reactor runs: freeze the start-up heap, and run full collections only at quiet moments."""
    from . import fanout, gctune

    gctune.freeze_startup()
    gctune.defer_full_collections(fanout.quiet_seconds)


if __name__ == "__main__":
    main()
