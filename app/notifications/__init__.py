"""Email notifications: an outbox table, a job that sends each row once, and the letters."""
