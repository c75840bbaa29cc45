from lemlab.cli import main

raise SystemExit(main())
