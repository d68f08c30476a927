"""FastAGI call control: Asterisk asks here, before a call rings, whether and how it may go."""
