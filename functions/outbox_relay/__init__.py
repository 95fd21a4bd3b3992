"""Outbox relay: publishes outbox rows that their step could not publish (broker down,
process killed between commit and publish). Triggered by a PingSource every minute, the
finest a cron schedule allows; the steps themselves publish right after commit, so the
relay only carries the stragglers and its age threshold keeps it off rows in flight."""
