from editsweep.cli import main

raise SystemExit(main())
