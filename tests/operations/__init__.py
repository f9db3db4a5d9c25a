"""Running cvault: serve, TLS, logs, metrics, limits, config, migrations, roles, deployments, nodes,
key rotation and managed rotation."""
