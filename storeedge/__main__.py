from storeedge.cli import main

raise SystemExit(main())
