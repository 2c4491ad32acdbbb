from bulkstatus.cli import main

raise SystemExit(main())
