from diffusion_core.cli import main

raise SystemExit(main())
