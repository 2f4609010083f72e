"""Browser tests: the live pages in real headless Chromium, driven by selenium."""
