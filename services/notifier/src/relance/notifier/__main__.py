"""`python -m relance.notifier`: the service's command line (serve, migrate)."""

from relance.notifier.app import main

raise SystemExit(main())
