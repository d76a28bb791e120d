"""Start-up: what wires the core to Slack, Flask and the sandbox (the application factory, the
web app, the HTTP server, the Slack gateway, the CLI and the demo launcher). The core (`bot/`)
imports none of this."""
