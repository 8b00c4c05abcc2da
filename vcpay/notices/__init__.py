"""Notices to clinic admins who asked for them: payment problems they may need to act on."""
