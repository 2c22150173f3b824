"""`python -m relance.payment_matcher`: the service's command line (serve, migrate)."""

from relance.payment_matcher.app import main

raise SystemExit(main())
