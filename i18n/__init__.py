"""Texts shared by the bot and the pages, in Indonesian and English: reasons, durations, states."""
