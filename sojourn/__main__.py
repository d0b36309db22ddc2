from sojourn.cli import main

raise SystemExit(main())
