"""A local Slack workspace for Safeguard: Web API stand-in, a driver that plays Slack towards
the bot, and a page for people. Talks to the bot over HTTP only.

Entry points: `sandbox.server.Sandbox`, `sandbox.workspace.demo_workspace`,
`sandbox.driver.Driver`, `sandbox.clock.ManualClock`.
"""
