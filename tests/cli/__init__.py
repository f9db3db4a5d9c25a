"""The `cvault` command and the client library: every command as a real process, `cvault dev`, the transports."""
