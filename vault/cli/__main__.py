from vault.cli.main import main

raise SystemExit(main())
