"""The running service: settings, lifecycle (every task owned and awaited), event loop,
systemd notifications and the rules in force."""
