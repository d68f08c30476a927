"""Account numbers, PINs, extensions, SIP credentials, DIDs, Asterisk realtime rows."""
