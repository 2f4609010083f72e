"""Web pages: server-rendered HTML, static ES modules, the live event stream, login."""
