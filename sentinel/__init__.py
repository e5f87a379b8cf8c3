"""The sentinel: a small watcher, not the hub, that texts people when the hub is gone.

It reads only `hubs/+/state` and `hub/time` over MQTT (its own read-only login) and
sends SMS through its own modem (the `modem` leaf package) and optional webhooks. It
never imports the hub: it must keep working when the hub's code, database or machine
is what broke.
"""
