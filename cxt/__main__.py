from cxt.cli import main

raise SystemExit(main())
