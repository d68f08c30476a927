"""Logins: platform admins, reseller staff and account administrators (models), signing in
and creating logins (operations), and per-login preferences (preferences)."""
