"""Platform simulators: each speaks its platform's spec, for tests and the demo."""
