"""The audit console in a real headless Chromium."""
