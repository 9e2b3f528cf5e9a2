"""``sfu loadtest``: drive many headless clients against a running server and measure it."""
