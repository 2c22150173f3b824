"""`python -m relance.invoice_api`: the service's command line (serve, migrate)."""

from relance.invoice_api.app import main

raise SystemExit(main())
