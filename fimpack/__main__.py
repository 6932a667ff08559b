from fimpack.cli import main

raise SystemExit(main())
