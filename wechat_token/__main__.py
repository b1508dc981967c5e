"""python -m wechat_token: the same as the wechat-token command."""

from wechat_token.cli import main

raise SystemExit(main())
