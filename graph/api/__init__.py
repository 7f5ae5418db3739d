"""The HTTP service: shoppers, managers and analysts on the same graph and session runner as
the CLI (``discount-manager serve``). Workers are stateless: every turn's state is in the
checkpoints and stores of the deployment (SQLite files, or Postgres past one machine)."""
