"""The Vault-compatible API with real Vault clients (hvac, bao, npm clients), and both services' OpenAPI documents."""
