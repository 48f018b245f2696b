from ovms_grpc.cli import main

raise SystemExit(main())
