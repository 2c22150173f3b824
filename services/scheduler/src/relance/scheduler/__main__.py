"""`python -m relance.scheduler`: the service's command line (serve, migrate)."""

from relance.scheduler.app import main

raise SystemExit(main())
